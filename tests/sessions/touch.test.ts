// POST /v1/sessions/touch: a keep-alive that always records activity, and says why an ended session cannot be touched.
import t from 'tap'
import { setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { revoke, touch } from '../helpers/sessions.js'
import { ageLastSeen, assertError, assertSessionInvalid, issue, row } from './_support.js'

// The default touch interval (60 s) is in force: touch must write anyway.
const { app, sql } = await setup(t, { SESSION_POLICIES: JSON.stringify({ brief: { idleTimeout: 7200, absoluteTimeout: 3600 } }) })

t.test('touch: within the touch interval lastSeenAt still moves to now', async (t) => {
  const { token, session } = await issue(app, { userId: 't-within' })
  await ageLastSeen(sql, session.id, 10)
  const before = await row(sql, session.id)
  const res = await touch(app, token)
  t.equal(res.statusCode, 200, res.body)
  const after = await row(sql, session.id)
  t.ok(after!.last_seen_at.getTime() - before!.last_seen_at.getTime() >= 9_000, 'lastSeenAt moved forward by about 10 s')
  t.equal(res.json().session.lastSeenAt, after?.last_seen_at.toISOString())
})

t.test('touch: the idle deadline slides to lastSeenAt + idle timeout', async (t) => {
  const { token, session } = await issue(app, { userId: 't-slide' })
  await ageLastSeen(sql, session.id, 10)
  const { session: touched } = (await touch(app, token)).json()
  t.equal(Date.parse(touched.idleExpiresAt) - Date.parse(touched.lastSeenAt), 7200_000)
  t.ok(Date.parse(touched.idleExpiresAt) > Date.parse(session.idleExpiresAt), 'later than before')
})

t.test('touch: does not move createdAt or expiresAt', async (t) => {
  const { token, session } = await issue(app, { userId: 't-abs' })
  await ageLastSeen(sql, session.id, 10)
  const { session: touched } = (await touch(app, token)).json()
  t.equal(touched.createdAt, session.createdAt)
  t.equal(touched.expiresAt, session.expiresAt)
})

t.test('touch: a revoked session is 401 revoked with its revokeReason', async (t) => {
  const { token } = await issue(app, { userId: 't-revoked' })
  await revoke(app, token)
  assertSessionInvalid(t, await touch(app, token), 'revoked', 'logout')
})

t.test('touch: an idle session is 401 idle_timeout and is not revived', async (t) => {
  const { token, session } = await issue(app, { userId: 't-idle' })
  await ageSession(sql, session.id, { seconds: 7201 })
  const before = await row(sql, session.id)
  assertSessionInvalid(t, await touch(app, token), 'idle_timeout')
  t.equal((await row(sql, session.id))?.last_seen_text, before?.last_seen_text)
})

t.test('touch: a session past its absolute lifetime is 401 expired', async (t) => {
  const { token, session } = await issue(app, { userId: 't-expired', policy: 'brief' })
  await ageSession(sql, session.id, { seconds: 3601 })
  assertSessionInvalid(t, await touch(app, token), 'expired')
})

t.test('touch: an unknown token is 401 not_found', async (t) => {
  assertSessionInvalid(t, await touch(app, 'Z'.repeat(43)), 'not_found')
})

t.test('touch: a token that is not a string is a 400', async (t) => {
  assertError(t, await touch(app, 123), 400, 'invalid_request')
})
