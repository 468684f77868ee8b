// Per-user limits (maxPerUser): evict_oldest and reject hold under 30 concurrent creates; only active sessions of the policy count.
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { revoke, validate } from '../helpers/sessions.js'
import { assertError, assertSessionInvalid, create, issue, type Issued } from './_support.js'

const { app, sql } = await setup(t, {
  SESSION_POLICIES: JSON.stringify({
    finance: { idleTimeout: 900, absoluteTimeout: 28800, maxPerUser: 3, onLimit: 'evict_oldest' },
    vault: { idleTimeout: 900, absoluteTimeout: 28800, maxPerUser: 3, onLimit: 'reject' },
  }),
})

// Counts by state as the database judges it, for one user and policy.
async function states(userId: string, policy: string): Promise<Record<string, number>> {
  const rows = await sql<{ state: string; count: number }[]>`
    select case
             when revoked_at is not null then 'revoked'
             when now() >= expires_at then 'expired'
             when now() >= idle_expires_at then 'idle_timeout'
             else 'active'
           end as state, count(*)::int as count
      from sessions where user_id = ${userId} and policy = ${policy} group by 1`
  return Object.fromEntries(rows.map((r) => [r.state, r.count]))
}

const parallelCreates = (userId: string, policy: string, n = 30): Promise<LightMyRequestResponse[]> =>
  Promise.all(Array.from({ length: n }, () => create(app, { userId, policy })))

t.test('evict_oldest: 30 parallel creates all succeed and leave exactly 3 active', async (t) => {
  const results = await parallelCreates('lim-evict', 'finance')
  t.same(results.map((r) => r.statusCode), Array(30).fill(201))
  t.same(await states('lim-evict', 'finance'), { active: 3, revoked: 27 })
})

t.test('evict_oldest: every evicted session answers 401 revoked/session_limit', async (t) => {
  const results = await parallelCreates('lim-evict-reason', 'finance')
  const issued = results.map((r) => r.json() as Issued)
  const answers = await Promise.all(issued.map(({ token }) => validate(app, token, { touch: false })))
  const invalid = answers.filter((r) => r.statusCode !== 200)
  t.equal(invalid.length, 27)
  for (const res of invalid) assertSessionInvalid(t, res, 'revoked', 'session_limit')
})

t.test('evict_oldest: each evicted session has exactly one limit_evicted audit event', async (t) => {
  await parallelCreates('lim-evict-audit', 'finance')
  const evicted = await sql<{ id: string; events: number }[]>`
    select s.id, (select count(*)::int from audit_events e where e.session_id = s.id and e.type = 'limit_evicted') as events
      from sessions s where s.user_id = 'lim-evict-audit' and s.revoked_at is not null`
  t.equal(evicted.length, 27)
  t.same(evicted.map((e) => e.events), Array(27).fill(1))
  const [{ total }] = await sql<{ total: number }[]>`
    select count(*)::int as total from audit_events where user_id = 'lim-evict-audit' and type = 'limit_evicted'`
  t.equal(total, 27, 'no extra events')
})

t.test('evict_oldest: evicted sessions are the least recently seen', async (t) => {
  const a = await issue(app, { userId: 'lim-lru', policy: 'finance' })
  const b = await issue(app, { userId: 'lim-lru', policy: 'finance' })
  const c = await issue(app, { userId: 'lim-lru', policy: 'finance' })
  // a was seen most recently, b least
  await sql`update sessions set last_seen_at = last_seen_at - interval '300 seconds' where id = ${b.session.id}`
  await sql`update sessions set last_seen_at = last_seen_at - interval '200 seconds' where id = ${c.session.id}`
  await issue(app, { userId: 'lim-lru', policy: 'finance' })
  assertSessionInvalid(t, await validate(app, b.token), 'revoked', 'session_limit')
  t.equal((await validate(app, a.token)).statusCode, 200)
  t.equal((await validate(app, c.token)).statusCode, 200)
})

t.test('evict_oldest: repeated rounds of 30 parallel creates keep exactly 3 active', async (t) => {
  for (let round = 1; round <= 3; round++) {
    const results = await parallelCreates('lim-rounds', 'finance')
    t.equal(results.filter((r) => r.statusCode === 201).length, 30, `round ${round}: all created`)
    t.equal((await states('lim-rounds', 'finance')).active, 3, `round ${round}: 3 active`)
  }
})

t.test('reject: 30 parallel creates give exactly 3 × 201 and 27 × 409 session_limit', async (t) => {
  const results = await parallelCreates('lim-reject', 'vault')
  t.equal(results.filter((r) => r.statusCode === 201).length, 3)
  const rejected = results.filter((r) => r.statusCode !== 201)
  t.equal(rejected.length, 27)
  for (const res of rejected) assertError(t, res, 409, 'session_limit')
  t.same(await states('lim-reject', 'vault'), { active: 3 })
})

t.test('reject: repeated rounds each leave exactly 3 active', async (t) => {
  for (let round = 1; round <= 3; round++) {
    const userId = `lim-reject-${round}`
    const results = await parallelCreates(userId, 'vault')
    t.equal(results.filter((r) => r.statusCode === 409).length, 27, `round ${round}: 27 rejected`)
    t.same(await states(userId, 'vault'), { active: 3 }, `round ${round}`)
  }
})

t.test('reject: a user at the limit is rejected again in a later round', async (t) => {
  await parallelCreates('lim-reject-later', 'vault', 3)
  const results = await parallelCreates('lim-reject-later', 'vault', 10)
  t.same(results.map((r) => r.statusCode), Array(10).fill(409))
  t.same(await states('lim-reject-later', 'vault'), { active: 3 })
})

t.test('reject: a rejected create writes no audit event', async (t) => {
  await parallelCreates('lim-reject-audit', 'vault', 3)
  const before = await sql`select id from audit_events where user_id = 'lim-reject-audit'`
  t.equal((await create(app, { userId: 'lim-reject-audit', policy: 'vault' })).statusCode, 409)
  const after = await sql`select id from audit_events where user_id = 'lim-reject-audit'`
  t.equal(after.length, before.length)
})

t.test('limit: an idle-timed-out session does not count (evict_oldest evicts nobody)', async (t) => {
  const issued = [1, 2, 3].map(() => issue(app, { userId: 'lim-idle', policy: 'finance' }))
  const [ended, ...live] = await Promise.all(issued)
  await ageSession(sql, ended.session.id, { seconds: 901 })
  await issue(app, { userId: 'lim-idle', policy: 'finance' })
  for (const { token } of live) t.equal((await validate(app, token)).statusCode, 200)
  const [{ count }] = await sql<{ count: number }[]>`select count(*)::int as count from audit_events where user_id = 'lim-idle' and type = 'limit_evicted'`
  t.equal(count, 0)
})

t.test('limit: an expired session does not count (reject accepts)', async (t) => {
  const ended = await issue(app, { userId: 'lim-expired', policy: 'vault' })
  await issue(app, { userId: 'lim-expired', policy: 'vault' })
  await issue(app, { userId: 'lim-expired', policy: 'vault' })
  await ageSession(sql, ended.session.id, { seconds: 28801 })
  t.equal((await create(app, { userId: 'lim-expired', policy: 'vault' })).statusCode, 201)
})

t.test('limit: a revoked session does not count (reject accepts)', async (t) => {
  const first = await issue(app, { userId: 'lim-revoked', policy: 'vault' })
  await issue(app, { userId: 'lim-revoked', policy: 'vault' })
  await issue(app, { userId: 'lim-revoked', policy: 'vault' })
  t.equal((await revoke(app, first.token)).statusCode, 204)
  t.equal((await create(app, { userId: 'lim-revoked', policy: 'vault' })).statusCode, 201)
})

t.test('limit: sessions of another policy do not count', async (t) => {
  const defaults = await Promise.all([1, 2, 3, 4, 5].map(() => issue(app, { userId: 'lim-policy' })))
  const results = await parallelCreates('lim-policy', 'vault', 3)
  t.same(results.map((r) => r.statusCode), [201, 201, 201])
  for (const { token } of defaults) t.equal((await validate(app, token)).statusCode, 200)
  t.same(await states('lim-policy', 'default'), { active: 5 })
})

t.test('limit: other users do not count', async (t) => {
  await parallelCreates('lim-user-a', 'vault', 3)
  const results = await parallelCreates('lim-user-b', 'vault', 3)
  t.same(results.map((r) => r.statusCode), [201, 201, 201])
})
