// GET /v1/sessions/{id}: the session with its state (as the database judges it), an ETag, and 404/400 for bad ids.
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { revoke } from '../helpers/sessions.js'
import { RFC3339_UTC, SESSION_FIELDS, UNKNOWN_SESSION_ID, assertError, getById, issue, sha256 } from './_support.js'

const { app, sql } = await setup(t, { SESSION_POLICIES: JSON.stringify({ brief: { idleTimeout: 7200, absoluteTimeout: 3600 } }) })

t.test('get: an active session is 200 with state active and no revoke fields', async (t) => {
  const { session } = await issue(app, { userId: 'g-active', data: { a: 1 } })
  const res = await getById(app, session.id)
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { session, state: 'active' })
})

t.test('get: a revoked session has state revoked with revokedAt and revokeReason', async (t) => {
  const { token, session } = await issue(app, { userId: 'g-revoked' })
  await revoke(app, token, 'logout')
  const body = (await getById(app, session.id)).json()
  t.equal(body.state, 'revoked')
  t.match(body.revokedAt, RFC3339_UTC)
  t.equal(body.revokeReason, 'logout')
  t.equal(body.session.id, session.id)
})

t.test('get: a session past its absolute lifetime has state expired', async (t) => {
  const { session } = await issue(app, { userId: 'g-expired', policy: 'brief' })
  await ageSession(sql, session.id, { seconds: 3601 })
  const body = (await getById(app, session.id)).json()
  t.equal(body.state, 'expired')
  t.notOk('revokeReason' in body, 'no revokeReason')
})

t.test('get: an idle session has state idle_timeout', async (t) => {
  const { session } = await issue(app, { userId: 'g-idle' })
  await ageSession(sql, session.id, { seconds: 7201 })
  t.equal((await getById(app, session.id)).json().state, 'idle_timeout')
})

t.test('get: a session past both deadlines has state expired', async (t) => {
  const { session } = await issue(app, { userId: 'g-both', policy: 'brief' })
  await ageSession(sql, session.id, { seconds: 7201 })
  t.equal((await getById(app, session.id)).json().state, 'expired')
})

t.test('get: the ETag header is the quoted version', async (t) => {
  const { session } = await issue(app, { userId: 'g-etag' })
  t.equal((await getById(app, session.id)).headers.etag, '"1"')
  await call(app, { method: 'PATCH', url: `/v1/sessions/${session.id}`, payload: { data: { x: 1 } } })
  t.equal((await getById(app, session.id)).headers.etag, '"2"')
})

t.test('get: the body never carries a token or its hash', async (t) => {
  const { token, session } = await issue(app, { userId: 'g-secretless' })
  const res = await getById(app, session.id)
  t.notOk(res.body.includes(token), 'no token')
  t.notOk(res.body.includes(sha256(token).toString('hex')) || res.body.includes(sha256(token).toString('base64')), 'no hash')
  t.same(Object.keys(res.json()).sort(), ['session', 'state'])
  t.same(Object.keys(res.json().session).sort(), [...SESSION_FIELDS].sort())
})

t.test('get: an unknown well-formed id is 404 not_found', async (t) => {
  assertError(t, await getById(app, UNKNOWN_SESSION_ID), 404, 'not_found')
})

t.test('get: a malformed id is 404 not_found', async (t) => {
  for (const id of ['abc', 's_123', 's_01arz3ndektsv4rrffq69g5fav']) assertError(t, await getById(app, id), 404, 'not_found')
})

t.test('get: an id with a control character is a 400', async (t) => {
  assertError(t, await getById(app, 's_%01'), 400, 'invalid_request')
  assertError(t, await getById(app, '%7F'), 400, 'invalid_request')
})
