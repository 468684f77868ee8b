// GET /v1/revocations: revocations after a cursor, long-polling for the next one, and expired cursors.
import t from 'tap'
import { ADMIN_KEY, call, setup } from '../helpers/app.js'
import { createSession, revoke, rotate } from '../helpers/sessions.js'

type Page = { revocations: Array<{ cursor: string; sessionId: string; type: string; reason: string | null; at: string }>; nextCursor: string }

t.test('revocations: a fresh start is empty, then every revoke, rotation and eviction appears in order', async (t) => {
  const { app } = await setup(t, { SESSION_POLICIES: '{"single":{"maxPerUser":1}}' })
  await createSession(app, { userId: 'before' })
  const start = await call(app, { method: 'GET', url: '/v1/revocations' })
  t.equal(start.statusCode, 200)
  const first = start.json() as Page
  t.same(first.revocations, [])
  t.match(first.nextCursor, /^\d+$/)

  const a = await createSession(app, { userId: 'u1' })
  await revoke(app, a.token, 'logout')
  const b = await createSession(app, { userId: 'u2' })
  await rotate(app, b.token)
  const c = await createSession(app, { userId: 'u3', policy: 'single' })
  await createSession(app, { userId: 'u3', policy: 'single' })

  const res = await call(app, { method: 'GET', url: `/v1/revocations?since=${first.nextCursor}&wait=0` })
  const page = res.json() as Page
  t.same(page.revocations.map((r) => [r.sessionId, r.type, r.reason]), [
    [a.session.id, 'revoked', 'logout'],
    [b.session.id, 'rotated', 'rotated'],
    [c.session.id, 'limit_evicted', 'session_limit'],
  ])
  t.ok(BigInt(page.nextCursor) > BigInt(page.revocations[2].cursor), 'nextCursor is past the last revocation')
  const again = (await call(app, { method: 'GET', url: `/v1/revocations?since=${page.revocations[2].cursor}&wait=0` })).json() as Page
  t.same(again.revocations.map((r) => r.sessionId), [c.session.id], 'a revocation\'s own cursor resumes at that revocation (served again, never skipped)')
  const after = (await call(app, { method: 'GET', url: `/v1/revocations?since=${page.nextCursor}&wait=0` })).json() as Page
  t.same(after, { revocations: [], nextCursor: page.nextCursor })
})

// The feed re-reads the log every second in case a notification is lost: a bound well under that second is only met
// when NOTIFY wakes the waiting request.
const WOKEN_WITHIN_MS = 500
const WAKE_TRIALS = 30

t.test(`revocations: a waiting request answers as soon as a session is revoked (p99 under ${WOKEN_WITHIN_MS} ms, woken by NOTIFY)`, async (t) => {
  const { app } = await setup(t)
  const delays: number[] = []
  for (let i = 0; i < WAKE_TRIALS; i++) {
    const { token } = await createSession(app, { userId: `waiting-${i}` })
    const { nextCursor } = (await call(app, { method: 'GET', url: '/v1/revocations' })).json() as Page
    const waiting = call(app, { method: 'GET', url: `/v1/revocations?since=${nextCursor}&wait=20` })
    // Past a recheck, at a random phase of the next one.
    await new Promise((resolve) => setTimeout(resolve, 1000 + Math.random() * 1000))
    // Measured from the revoke's answer (it has committed by then): the revoke's own time is not the feed's.
    let answeredAt = 0
    void waiting.then(() => { answeredAt = performance.now() })
    await revoke(app, token)
    const revokedAt = performance.now()
    const res = await waiting
    delays.push(Math.max(0, answeredAt - revokedAt))
    t.equal((res.json() as Page).revocations.length, 1)
  }
  delays.sort((x, y) => x - y)
  const p99 = delays[Math.min(delays.length - 1, Math.floor(0.99 * delays.length))]
  t.comment(`long-poll answered after the revoke: p50 ${delays[Math.floor(delays.length / 2)].toFixed(1)} ms, p99 ${p99.toFixed(1)} ms over ${WAKE_TRIALS} trials`)
  t.ok(p99 < WOKEN_WITHIN_MS, `p99 ${p99.toFixed(1)} ms < ${WOKEN_WITHIN_MS} ms`)
})

t.test('revocations: wait=0 answers at once; a bad cursor is a 400', async (t) => {
  const { app } = await setup(t)
  const { nextCursor } = (await call(app, { method: 'GET', url: '/v1/revocations' })).json() as Page
  const res = await call(app, { method: 'GET', url: `/v1/revocations?since=${nextCursor}&wait=0` })
  t.same(res.json(), { revocations: [], nextCursor })
  for (const since of ['abc', '-1', '01', '1'.repeat(20)]) {
    const bad = await call(app, { method: 'GET', url: `/v1/revocations?since=${since}` })
    t.equal(bad.statusCode, 400, since)
    t.equal(bad.json().error.code, 'invalid_request')
  }
  const tooLong = await call(app, { method: 'GET', url: '/v1/revocations?wait=31' })
  t.equal(tooLong.statusCode, 400)
})

t.test('revocations: a cursor older than the kept audit log, or never issued, is 410 cursor_expired', async (t) => {
  const { app, sql } = await setup(t, { SESSION_RETENTION: '60' })
  const old = await createSession(app, { userId: 'old' })
  await revoke(app, old.token)
  const { nextCursor } = (await call(app, { method: 'GET', url: '/v1/revocations' })).json() as Page
  for (let i = 0; i < 3; i++) await createSession(app, { userId: `new-${i}` })
  // The first events fall out of retention and are pruned.
  await sql`update audit_events set at = now() - interval '2 minutes' where session_id = ${old.session.id}`
  await call(app, { method: 'POST', url: '/v1/admin/prune', key: ADMIN_KEY })
  const expired = await call(app, { method: 'GET', url: '/v1/revocations?since=0&wait=0' })
  t.equal(expired.statusCode, 410)
  t.match(expired.json(), { error: { code: 'cursor_expired', details: [] } })
  const current = await call(app, { method: 'GET', url: `/v1/revocations?since=${nextCursor}&wait=0` })
  t.equal(current.statusCode, 200, 'a cursor at the kept edge still works')
  const future = await call(app, { method: 'GET', url: `/v1/revocations?since=${BigInt(nextCursor) + 1_000_000_000n}&wait=0` })
  t.equal(future.statusCode, 410)
})

t.test('revocations: closing the server ends waiting requests at once', async (t) => {
  const { app } = await setup(t)
  const { nextCursor } = (await call(app, { method: 'GET', url: '/v1/revocations' })).json() as Page
  const waiting = call(app, { method: 'GET', url: `/v1/revocations?since=${nextCursor}&wait=30` })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const closingAt = performance.now()
  await app.close()
  const res = await waiting
  t.equal(res.statusCode, 200)
  t.same((res.json() as Page).revocations, [])
  t.ok(performance.now() - closingAt < 30_000, 'did not wait out the 30 s')
  t.comment(`close took ${(performance.now() - closingAt).toFixed(0)} ms with a long-poll waiting`)
})

t.test('revocations: waiting long-polls do not take the database slots other requests need', async (t) => {
  const { app } = await setup(t, { DATABASE_POOL_MAX: '2', DATABASE_QUEUE_TIMEOUT_MS: '500' })
  const { nextCursor } = (await call(app, { method: 'GET', url: '/v1/revocations' })).json() as Page
  const polls = Array.from({ length: 6 }, () => call(app, { method: 'GET', url: `/v1/revocations?since=${nextCursor}&wait=3` }))
  await new Promise((resolve) => setTimeout(resolve, 200))
  const created = await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'busy' } })
  t.equal(created.statusCode, 201, 'a create is served while six long-polls wait on a pool of two')
  const answers = await Promise.all(polls)
  t.ok(answers.every((res) => res.statusCode === 200))
})
