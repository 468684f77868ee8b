// POST /v1/sessions/validate: answers, activity coalescing within SESSION_TOUCH_INTERVAL, and why a token is invalid.
import t from 'tap'
import { setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { revoke, validate } from '../helpers/sessions.js'
import { ageLastSeen, assertError, assertSessionInvalid, issue, reconfigure, row } from './_support.js'

const POLICIES = JSON.stringify({ brief: { idleTimeout: 7200, absoluteTimeout: 3600 } })
// Default touch interval (60 s).
const base = await setup(t, { SESSION_POLICIES: POLICIES })
const { app, sql } = base

t.test('validate: a fresh token is 200 with its session', async (t) => {
  const { token, session } = await issue(app, { userId: 'v-ok', data: { a: 1 } })
  const res = await validate(app, token)
  t.equal(res.statusCode, 200, res.body)
  t.same(Object.keys(res.json()), ['session'])
  t.match(res.json().session, { id: session.id, userId: 'v-ok', data: { a: 1 }, version: 1 })
})

t.test('validate: within the touch interval of the last write nothing is written', async (t) => {
  const { token, session } = await issue(app, { userId: 'v-coalesce' })
  await ageLastSeen(sql, session.id, 30)
  const before = await row(sql, session.id)
  const res = await validate(app, token)
  t.equal(res.statusCode, 200, res.body)
  t.equal((await row(sql, session.id))?.last_seen_text, before?.last_seen_text)
  t.equal(res.json().session.lastSeenAt, before?.last_seen_at.toISOString())
})

t.test('validate: past the touch interval (61 s) lastSeenAt moves to now', async (t) => {
  const { token, session } = await issue(app, { userId: 'v-due' })
  await ageLastSeen(sql, session.id, 61)
  const before = await row(sql, session.id)
  const res = await validate(app, token)
  t.equal(res.statusCode, 200, res.body)
  const after = await row(sql, session.id)
  t.ok(after!.last_seen_at.getTime() - before!.last_seen_at.getTime() >= 60_000, 'lastSeenAt moved forward by about 61 s')
  t.equal(res.json().session.lastSeenAt, after?.last_seen_at.toISOString())
  t.equal(Date.parse(res.json().session.idleExpiresAt) - Date.parse(res.json().session.lastSeenAt), 7200_000, 'idle window slid')
})

t.test('validate: idle longer than the idle timeout is 401 idle_timeout', async (t) => {
  const { token, session } = await issue(app, { userId: 'v-idle' })
  await ageSession(sql, session.id, { seconds: 7201 })
  assertSessionInvalid(t, await validate(app, token), 'idle_timeout')
})

t.test('validate: just inside the idle timeout is still 200', async (t) => {
  const { token, session } = await issue(app, { userId: 'v-idle-edge' })
  await ageSession(sql, session.id, { seconds: 7190 })
  t.equal((await validate(app, token)).statusCode, 200)
})

t.test('validate: past the absolute lifetime is 401 expired', async (t) => {
  // policy brief: absolute 3600 s, idle 7200 s, so only the absolute deadline has passed
  const { token, session } = await issue(app, { userId: 'v-abs', policy: 'brief' })
  await ageSession(sql, session.id, { seconds: 3601 })
  assertSessionInvalid(t, await validate(app, token), 'expired')
})

t.test('validate: past both deadlines is 401 expired (the absolute lifetime wins)', async (t) => {
  const { token, session } = await issue(app, { userId: 'v-both' })
  await ageSession(sql, session.id, { seconds: 604801 })
  assertSessionInvalid(t, await validate(app, token), 'expired')
})

t.test('validate: past both deadlines with the idle one passed first is still expired', async (t) => {
  const { token, session } = await issue(app, { userId: 'v-both-brief', policy: 'brief' })
  await ageSession(sql, session.id, { seconds: 7201 })
  assertSessionInvalid(t, await validate(app, token), 'expired')
})

t.test('validate: a revoked token is 401 revoked with its revokeReason', async (t) => {
  const { token } = await issue(app, { userId: 'v-revoked' })
  t.equal((await revoke(app, token, 'stolen_device')).statusCode, 204)
  assertSessionInvalid(t, await validate(app, token), 'revoked', 'stolen_device')
})

const malformed: Array<[string, string]> = [
  ['empty', ''],
  ['10 KB long', 'A'.repeat(10 * 1024)],
  ['non-ASCII', 'é'.repeat(43)],
  ['non-ASCII mixed in', `${'A'.repeat(42)}ü`],
  ['42 characters', 'A'.repeat(42)],
  ['44 characters', 'A'.repeat(44)],
  ['base64 with + and /', `${'A'.repeat(41)}+/`],
  ['padded base64', `${'A'.repeat(43)}=`],
  ['with a space', `${'A'.repeat(21)} ${'A'.repeat(21)}`],
]
for (const [what, token] of malformed) {
  t.test(`validate: a malformed token (${what}) is 401 not_found`, async (t) => {
    assertSessionInvalid(t, await validate(app, token), 'not_found')
  })
}

t.test('validate: a well-formed unknown token is 401 not_found', async (t) => {
  assertSessionInvalid(t, await validate(app, 'Q'.repeat(43)), 'not_found')
})

t.test('validate: a missing token is a 400', async (t) => {
  const res = await validate(app, undefined)
  assertError(t, res, 400, 'invalid_request')
})

t.test('validate: a token that is not a string is a 400', async (t) => {
  for (const token of [123, null, ['A'.repeat(43)], { t: 1 }]) assertError(t, await validate(app, token), 400, 'invalid_request')
})

t.test('validate: touch that is not a boolean is a 400', async (t) => {
  const { token } = await issue(app, { userId: 'v-touch-type' })
  assertError(t, await validate(app, token, { touch: 'false' }), 400, 'invalid_request')
})

t.test('validate: an unknown body field is a 400', async (t) => {
  const { token } = await issue(app, { userId: 'v-extra' })
  assertError(t, await validate(app, token, { userId: 'v-extra' }), 400, 'invalid_request')
})

t.test('validate with SESSION_TOUCH_INTERVAL=0', async (t) => {
  const { app, sql } = await reconfigure(t, base, { SESSION_TOUCH_INTERVAL: '0' })

  t.test('validate: every validate moves lastSeenAt', async (t) => {
    const { token, session } = await issue(app, { userId: 'v0-move' })
    await ageLastSeen(sql, session.id, 5)
    const before = await row(sql, session.id)
    const res = await validate(app, token)
    t.equal(res.statusCode, 200, res.body)
    const after = await row(sql, session.id)
    t.ok(after!.last_seen_at.getTime() - before!.last_seen_at.getTime() >= 4_000, 'lastSeenAt moved forward by about 5 s')
    t.equal(res.json().session.lastSeenAt, after?.last_seen_at.toISOString())
  })

  t.test('validate: touch:false does not move lastSeenAt', async (t) => {
    const { token, session } = await issue(app, { userId: 'v0-notouch' })
    await ageLastSeen(sql, session.id, 5)
    const before = await row(sql, session.id)
    const res = await validate(app, token, { touch: false })
    t.equal(res.statusCode, 200, res.body)
    t.equal((await row(sql, session.id))?.last_seen_text, before?.last_seen_text)
    t.equal(res.json().session.lastSeenAt, before?.last_seen_at.toISOString())
  })
})
