// Bulk paths at sizes past one statement's parameter limit (65,534 in postgres.js): log out everywhere with 50,000 sessions,
// an eviction of thousands over a lowered limit, and the audit writer itself.
import t from 'tap'
import * as audit from '../../src/audit/store.js'
import { call, setup } from '../helpers/app.js'
import { issue } from '../sessions/_support.js'

const { app, sql } = await setup(t, {
  SESSION_POLICIES: JSON.stringify({ finance: { idleTimeout: 900, absoluteTimeout: 28800, maxPerUser: 3, onLimit: 'evict_oldest' } }),
})

// `count` active sessions of one user, written directly: ids s_<prefix><hex of g>.
async function fill(userId: string, prefix: string, count: number, policy = 'default'): Promise<void> {
  await sql`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, idle_expires_at, expires_at, ip, user_agent)
    select 's_' || ${prefix} || lpad(upper(to_hex(g)), ${26 - prefix.length}, '0'), sha256((${prefix} || g)::bytea), ${userId},
           ${policy}, 900, now() + interval '1 hour', now() + interval '1 day', '198.51.100.7', 'bulk/1'
      from generate_series(1, ${count}::int) g`
}

const activeOf = async (userId: string) =>
  (await sql<{ n: number }[]>`select count(*)::int as n from sessions where user_id = ${userId} and revoked_at is null`)[0].n
const eventsOf = async (userId: string, type: string) =>
  (await sql<{ n: number }[]>`select count(*)::int as n from audit_events where user_id = ${userId} and type = ${type}`)[0].n

t.test('log out everywhere: 50,000 sessions of one user end in one call, each with one revoked event', async (t) => {
  await fill('many', 'M', 50_000)
  const kept = await issue(app, { userId: 'many' })
  await fill('bystander', 'B', 10)
  const res = await call(app, { method: 'DELETE', url: `/v1/users/many/sessions?except=${kept.session.id}&reason=password_change` })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { revoked: 50_000 })
  t.equal(await activeOf('many'), 1, 'only the excepted session is left')
  t.equal(await eventsOf('many', 'revoked'), 50_000, 'one revoked event each')
  const [{ reasons }] = await sql<{ reasons: string[] }[]>`
    select array_agg(distinct revoke_reason) as reasons from sessions where user_id = 'many' and revoked_at is not null`
  t.same(reasons, ['password_change'])
  t.equal(await activeOf('bystander'), 10, 'another user is untouched')
})

t.test('log out everywhere is all or nothing: a reader never sees part of 20,000 revoked', async (t) => {
  await fill('atomic', 'A', 20_000)
  const seen = new Set<number>()
  let running = true
  const watcher = (async () => {
    while (running) seen.add(await activeOf('atomic'))
  })()
  const res = await call(app, { method: 'DELETE', url: '/v1/users/atomic/sessions' })
  running = false
  await watcher
  t.equal(res.statusCode, 200, res.body)
  t.same([...seen].filter((n) => n !== 0 && n !== 20_000), [], 'every count seen is all or none')
  t.equal(await activeOf('atomic'), 0)
})

t.test('a limit lowered below what a user holds: one create evicts 12,000, each with one limit_evicted event', async (t) => {
  await fill('evicted', 'E', 12_000, 'finance')
  const res = await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'evicted', policy: 'finance' } })
  t.equal(res.statusCode, 201, res.body)
  t.equal(await activeOf('evicted'), 3)
  t.equal(await eventsOf('evicted', 'limit_evicted'), 11_998)
})

t.test('the audit writer takes 20,000 events in one call', async (t) => {
  const events = Array.from({ length: 20_000 }, (_, i) => ({
    type: 'revoked' as const, sessionId: `s_W${String(i).padStart(25, '0')}`, userId: 'writer', actor: 'test', reason: i % 2 === 0 ? 'admin' : null, ip: null, userAgent: i % 3 === 0 ? 'ua' : null,
  }))
  await audit.insertEvents(sql, events)
  t.equal(await eventsOf('writer', 'revoked'), 20_000)
  const [{ nullReasons }] = await sql<{ nullReasons: number }[]>`select count(*)::int as "nullReasons" from audit_events where user_id = 'writer' and reason is null`
  t.equal(nullReasons, 10_000, 'nulls stay null')
})
