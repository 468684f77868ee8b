import t from 'tap'
import { ADMIN_KEY, APP_KEY, call, setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { createSession, revoke, validate } from '../helpers/sessions.js'

const admin = (url: string, method: 'GET' | 'DELETE' | 'POST' = 'GET') => ({ method, url, key: ADMIN_KEY })

t.test('admin sessions: keyset pages cover every session once, newest first, with filters', async (t) => {
  const { app } = await setup(t)
  const ids: string[] = []
  for (let i = 0; i < 7; i++) ids.push((await createSession(app, { userId: i % 2 === 0 ? 'even' : 'odd' })).session.id)
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const res = await call(app, admin(`/v1/admin/sessions?limit=3${cursor ? `&cursor=${cursor}` : ''}`))
    t.equal(res.statusCode, 200, res.body)
    const page = res.json() as { sessions: Array<{ session: { id: string }; state: string }>; nextCursor: string | null }
    t.ok(page.sessions.length <= 3)
    seen.push(...page.sessions.map((item) => item.session.id))
    cursor = page.nextCursor
  } while (cursor !== null)
  t.same(seen, [...ids].reverse())

  const even = (await call(app, admin('/v1/admin/sessions?userId=even'))).json() as { sessions: Array<{ session: { userId: string } }> }
  t.equal(even.sessions.length, 4)
  t.ok(even.sessions.every((item) => item.session.userId === 'even'))
})

t.test('admin sessions: state and idleFor filters use the database clock', async (t) => {
  const { app, sql } = await setup(t)
  const idle = await createSession(app, { userId: 'u' })
  const fresh = await createSession(app, { userId: 'u' })
  const ended = await createSession(app, { userId: 'u' })
  await revoke(app, ended.token)
  await ageSession(sql, idle.session.id, { seconds: 600 })

  const idleFor = (await call(app, admin('/v1/admin/sessions?idleFor=300'))).json() as { sessions: Array<{ session: { id: string } }> }
  t.same(idleFor.sessions.map((item) => item.session.id), [idle.session.id])
  const revoked = (await call(app, admin('/v1/admin/sessions?state=revoked'))).json() as { sessions: Array<{ session: { id: string }; revokeReason: string }> }
  t.same(revoked.sessions.map((item) => [item.session.id, item.revokeReason]), [[ended.session.id, 'logout']])
  const active = (await call(app, admin('/v1/admin/sessions?state=active'))).json() as { sessions: Array<{ session: { id: string } }> }
  t.same(active.sessions.map((item) => item.session.id).sort(), [idle.session.id, fresh.session.id].sort())
})

t.test('admin sessions: a cursor that was not issued is a 400', async (t) => {
  const { app } = await setup(t)
  const res = await call(app, admin('/v1/admin/sessions?cursor=bm90LWEtY3Vyc29y'))
  t.equal(res.statusCode, 400)
  t.equal(res.json().error.code, 'invalid_request')
})

t.test('admin events: filter by session and type, page by cursor', async (t) => {
  const { app } = await setup(t)
  const { token, session } = await createSession(app, { userId: 'audited', ip: '203.0.113.7', userAgent: 'tests' })
  await revoke(app, token, 'logout')
  await createSession(app, { userId: 'other' })

  const res = await call(app, admin(`/v1/admin/events?sessionId=${session.id}&limit=1`))
  t.equal(res.statusCode, 200)
  const first = res.json() as { events: Array<Record<string, unknown>>; nextCursor: string }
  t.match(first.events, [{ type: 'revoked', sessionId: session.id, userId: 'audited', actor: 'app', reason: 'logout', ip: '203.0.113.7', userAgent: 'tests' }])
  const second = (await call(app, admin(`/v1/admin/events?sessionId=${session.id}&cursor=${first.nextCursor}`))).json() as { events: Array<Record<string, unknown>>; nextCursor: null }
  t.match(second.events, [{ type: 'created', sessionId: session.id }])
  t.equal(second.nextCursor, null)

  const created = (await call(app, admin('/v1/admin/events?type=created'))).json() as { events: unknown[] }
  t.equal(created.events.length, 2)
  const future = (await call(app, admin('/v1/admin/events?since=2999-01-01T00:00:00Z'))).json() as { events: unknown[] }
  t.equal(future.events.length, 0)
})

t.test('admin stats: counts by state, policy and reason', async (t) => {
  const { app, sql } = await setup(t, { SESSION_POLICIES: '{"finance":{"idleTimeout":900}}' })
  await createSession(app, { userId: 'a' })
  await createSession(app, { userId: 'a', policy: 'finance' })
  const gone = await createSession(app, { userId: 'b' })
  await revoke(app, gone.token)
  const old = await createSession(app, { userId: 'c' })
  await ageSession(sql, old.session.id, { seconds: 8000 })

  const res = await call(app, admin('/v1/admin/stats'))
  t.equal(res.statusCode, 200)
  const stats = res.json()
  t.match(stats, { active: 2, revoked: 1, idleTimeout: 1, expired: 0, activeUsers: 1, byPolicy: { default: 1, finance: 1 }, revokedByReason: { logout: 1 } })
  t.equal(stats.sessionAge.reduce((sum: number, bucket: { count: number }) => sum + bucket.count, 0), 2)
  t.equal(stats.sessionAge[0].lessThan, 60)
  t.equal(stats.sessionAge[0].count, 2)
  t.equal(stats.createdPerDay.reduce((sum: number, day: { count: number }) => sum + day.count, 0), 4)
})

t.test('admin stats agree, figure by figure, with the same rows judged one by one', async (t) => {
  const { app, sql } = await setup(t, { SESSION_POLICIES: '{"finance":{"idleTimeout":900},"ops":{"idleTimeout":600}}' })
  // 400 sessions spread over every state, three policies, 40 users, ages from seconds to weeks, four revoke reasons.
  await sql`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, created_at, last_seen_at, idle_expires_at, expires_at, revoked_at, revoke_reason)
    select 's_' || lpad(upper(to_hex(g)), 26, '0'), sha256(('stats' || g)::bytea), 'u' || (g % 40),
           (array['default', 'finance', 'ops'])[1 + g % 3], 3600,
           now() - make_interval(secs => (g * 7919) % 1300000 + 1),
           now() - make_interval(secs => ((g * 7919) % 1300000 + 1) / (1 + g % 5)),
           -- deadlines at least two minutes from now, so none falls between this test's read and the service's
           now() + make_interval(secs => case when g % 3 = 0 then -1 else 1 end * (120 + (g * 31) % 7200)),
           now() + make_interval(secs => case when g % 5 = 0 then -1 else 1 end * (120 + (g * 53) % 900000)),
           case when g % 7 = 0 then now() - interval '1 minute' end,
           case when g % 7 = 0 then (array['logout', 'admin', 'password_change', 'session_limit'])[1 + g % 4] end
      from generate_series(1, 400) g`
  const rows = await sql<Array<{ user_id: string; policy: string; revoke_reason: string | null; revoked: boolean; expired: boolean; idle: boolean; age: number; idle_age: number }>>`
    select user_id, policy, revoke_reason, revoked_at is not null as revoked, now() >= expires_at as expired, now() >= idle_expires_at as idle,
           extract(epoch from now() - created_at)::float8 as age, extract(epoch from now() - last_seen_at)::float8 as idle_age
      from sessions`
  const res = await call(app, admin('/v1/admin/stats'))
  t.equal(res.statusCode, 200, res.body)
  const stats = res.json()

  const bounds = [60, 300, 900, 3600, 4 * 3600, 8 * 3600, 86400, 7 * 86400]
  const bucketOf = (seconds: number) => bounds.filter((bound) => seconds >= bound).length
  const active = rows.filter((r) => !r.revoked && !r.expired && !r.idle)
  const tally = (keys: Array<string | number>) => keys.reduce<Record<string, number>>((acc, key) => ({ ...acc, [key]: (acc[key] ?? 0) + 1 }), {})
  const buckets = (ages: number[]) => { const counts = tally(ages.map(bucketOf)); return [...bounds, null].map((lessThan, i) => ({ lessThan, count: counts[i] ?? 0 })) }
  t.ok(active.length > 20 && active.length < 380, `a mix of states (${active.length} active of ${rows.length})`)
  t.equal(stats.active, active.length, 'active')
  t.equal(stats.revoked, rows.filter((r) => r.revoked).length, 'revoked')
  t.equal(stats.expired, rows.filter((r) => !r.revoked && r.expired).length, 'expired')
  t.equal(stats.idleTimeout, rows.filter((r) => !r.revoked && !r.expired && r.idle).length, 'idle timeout')
  t.equal(stats.activeUsers, new Set(active.map((r) => r.user_id)).size, 'active users')
  t.same(stats.byPolicy, tally(active.map((r) => r.policy)), 'active by policy')
  t.same(stats.sessionAge, buckets(active.map((r) => r.age)), 'session age buckets')
  t.same(stats.idleAge, buckets(active.map((r) => r.idle_age)), 'idle age buckets')
  t.same(stats.revokedByReason, tally(rows.filter((r) => r.revoked).map((r) => r.revoke_reason as string)), 'revoked by reason')
})

t.test('admin stats run under their own statement timeout, not the service\'s per-statement one', async (t) => {
  const { app, sql } = await setup(t, { DATABASE_STATEMENT_TIMEOUT_MS: '200' })
  const { token } = await createSession(app, { userId: 'a' })
  // A lock held for 800 ms makes every read of sessions wait longer than the service's 200 ms statement timeout.
  let locked = () => {}
  const lockTaken = new Promise<void>((resolve) => { locked = resolve })
  const holder = sql.begin(async (tx) => {
    await tx`lock table sessions in access exclusive mode`
    locked()
    await new Promise((resolve) => setTimeout(resolve, 800))
  })
  await lockTaken
  const [validated, stats] = await Promise.all([validate(app, token), call(app, admin('/v1/admin/stats'))])
  await holder
  t.equal(validated.statusCode, 503, 'a validate waiting on the lock ends at the service\'s statement timeout')
  t.equal(stats.statusCode, 200, stats.body)
  t.equal(stats.json().active, 1, 'the stats waited for the lock and answered')
})

t.test('mass revocation: needs a filter or all=true, revokes only matches, one event each', async (t) => {
  const { app, sql } = await setup(t, { SESSION_POLICIES: '{"finance":{"idleTimeout":900}}' })
  const finance = [await createSession(app, { userId: 'x', policy: 'finance' }), await createSession(app, { userId: 'y', policy: 'finance' })]
  const other = await createSession(app, { userId: 'x' })

  const bare = await call(app, admin('/v1/admin/sessions', 'DELETE'))
  t.equal(bare.statusCode, 400)
  t.equal(bare.json().error.code, 'invalid_request')

  const res = await call(app, admin('/v1/admin/sessions?policy=finance&reason=incident', 'DELETE'))
  t.same(res.json(), { revoked: 2, done: true, nextCursor: null })
  for (const { token } of finance) t.match((await validate(app, token)).json(), { error: { reason: 'revoked', revokeReason: 'incident' } })
  t.equal((await validate(app, other.token)).statusCode, 200)
  const [{ count }] = await sql<{ count: number }[]>`select count(*)::int as count from audit_events where type = 'revoked' and reason = 'incident' and actor = 'ops'`
  t.equal(count, 2)

  const all = await call(app, admin('/v1/admin/sessions?all=true', 'DELETE'))
  t.same(all.json(), { revoked: 1, done: true, nextCursor: null })
  t.match((await validate(app, other.token)).json(), { error: { revokeReason: 'admin' } })
})

t.test('prune: deletes only sessions ended longer ago than the retention, and old events', async (t) => {
  const { app, sql } = await setup(t, { SESSION_RETENTION: '3600' })
  const live = await createSession(app, { userId: 'p' })
  const recentlyEnded = await createSession(app, { userId: 'p' })
  await revoke(app, recentlyEnded.token)
  const longEnded = await createSession(app, { userId: 'p' })
  await revoke(app, longEnded.token)
  await sql`update sessions set revoked_at = now() - interval '2 hours' where id = ${longEnded.session.id}`
  const idleLongAgo = await createSession(app, { userId: 'p' })
  await ageSession(sql, idleLongAgo.session.id, { seconds: 7200 + 3601 })
  const oldButActive = await createSession(app, { userId: 'p' })
  await sql`update sessions set created_at = now() - interval '3 days' where id = ${oldButActive.session.id}`
  await sql`update audit_events set at = now() - interval '2 hours' where session_id = ${live.session.id}`

  const res = await call(app, admin('/v1/admin/prune', 'POST'))
  t.equal(res.statusCode, 200, res.body)
  // The idle-ended session's idle_timeout event is dated at its deadline, already past retention, so it goes too.
  t.same(res.json(), { deleted: 2, deletedEvents: 2, endedRecorded: 1, skipped: false, done: true })
  const left = await sql<{ id: string }[]>`select id from sessions order by id`
  t.same(left.map((row) => row.id).sort(), [live.session.id, recentlyEnded.session.id, oldButActive.session.id].sort())
  t.equal((await validate(app, live.token)).statusCode, 200)
})

t.test('prune: a session that ran out of time gets one expired or idle_timeout event, dated when it ended', async (t) => {
  const { app, sql } = await setup(t)
  const idle = await createSession(app, { userId: 'q', ip: '198.51.100.1' })
  await ageSession(sql, idle.session.id, { seconds: 7300 })
  const expired = await createSession(app, { userId: 'q' })
  await sql`update sessions set expires_at = now() - interval '1 minute' where id = ${expired.session.id}`
  const both = await createSession(app, { userId: 'q' })
  await sql`update sessions set expires_at = now() - interval '2 minutes', idle_expires_at = now() - interval '1 minute' where id = ${both.session.id}`

  t.match((await call(app, admin('/v1/admin/prune', 'POST'))).json(), { endedRecorded: 3, deleted: 0 })
  t.match((await call(app, admin('/v1/admin/prune', 'POST'))).json(), { endedRecorded: 0, deleted: 0 })
  const events = await sql<{ session_id: string; type: string; actor: string; ip: string | null; ended: boolean }[]>`
    select e.session_id, e.type, e.actor, e.ip, e.at = least(s.expires_at, s.idle_expires_at) as ended
      from audit_events e join sessions s on s.id = e.session_id
     where e.type in ('expired', 'idle_timeout') order by e.session_id`
  t.same(events.map((e) => [e.session_id, e.type, e.actor, e.ended]).sort(), [
    [idle.session.id, 'idle_timeout', 'system', true],
    [expired.session.id, 'expired', 'system', true],
    [both.session.id, 'expired', 'system', true],
  ].sort())
  t.equal(events.find((e) => e.session_id === idle.session.id)?.ip, '198.51.100.1')
})

t.test('admin routes refuse a sessions-scoped key', async (t) => {
  const { app } = await setup(t)
  for (const [method, url] of [['GET', '/v1/admin/sessions'], ['GET', '/v1/admin/events'], ['GET', '/v1/admin/stats'], ['DELETE', '/v1/admin/sessions?all=true'], ['POST', '/v1/admin/prune']] as const) {
    const res = await call(app, { method, url, key: APP_KEY })
    t.equal(res.statusCode, 403, `${method} ${url}`)
    t.equal(res.json().error.code, 'forbidden')
  }
})

t.test('prune runs on a pool of one connection (it never waits on the connection it holds)', async (t) => {
  const { app, sql } = await setup(t, { DATABASE_POOL_MAX: '1', SESSION_RETENTION: '0' })
  const { token } = await createSession(app, { userId: 'one' })
  await revoke(app, token)
  await sql`update sessions set revoked_at = now() - interval '1 second'`
  const res = await call(app, admin('/v1/admin/prune', 'POST'))
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), { deleted: 1, skipped: false })
})
