// DELETE /v1/sessions/{id}?reason=: revoke by the public id; admin is the default reason, and the first reason stays.
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import { validate } from '../helpers/sessions.js'
import { UNKNOWN_SESSION_ID, assertError, assertSessionInvalid, events, issue, row } from './_support.js'

const { app, sql } = await setup(t)

const remove = (id: string, query = '') => call(app, { method: 'DELETE', url: `/v1/sessions/${id}${query}` })

t.test('delete by id: 204 with an empty body', async (t) => {
  const { session } = await issue(app, { userId: 'd-204' })
  const res = await remove(session.id)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
})

t.test('delete by id: the token then validates as 401 revoked/admin', async (t) => {
  const { token, session } = await issue(app, { userId: 'd-admin' })
  await remove(session.id)
  assertSessionInvalid(t, await validate(app, token), 'revoked', 'admin')
})

t.test('delete by id: ?reason= is recorded', async (t) => {
  const { token, session } = await issue(app, { userId: 'd-reason' })
  t.equal((await remove(session.id, '?reason=fraud_suspected')).statusCode, 204)
  assertSessionInvalid(t, await validate(app, token), 'revoked', 'fraud_suspected')
})

t.test('delete by id: an unknown well-formed id is 404 not_found', async (t) => {
  assertError(t, await remove(UNKNOWN_SESSION_ID), 404, 'not_found')
})

t.test('delete by id: a malformed id is 404 not_found', async (t) => {
  assertError(t, await remove('abc'), 404, 'not_found')
})

t.test('delete by id: an already revoked session is 204 and the first reason stays', async (t) => {
  const { session } = await issue(app, { userId: 'd-twice' })
  await remove(session.id, '?reason=first')
  const res = await remove(session.id, '?reason=second')
  t.equal(res.statusCode, 204)
  t.equal((await row(sql, session.id))?.revoke_reason, 'first')
  t.equal((await events(sql, session.id)).filter((e) => e.type === 'revoked').length, 1, 'one revoked event')
})

t.test('delete by id: a reason with a control character is a 400 and revokes nothing', async (t) => {
  const { session } = await issue(app, { userId: 'd-badreason' })
  assertError(t, await remove(session.id, '?reason=a%0Ab'), 400, 'invalid_request')
  t.equal((await row(sql, session.id))?.revoked_at, null)
})
