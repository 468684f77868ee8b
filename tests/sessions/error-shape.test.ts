// Errors raised before any route code (router, body parser, limits, API keys) still have the contract shape and echo nothing.
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import { assertError } from './_support.js'

const { app } = await setup(t)

const SECRET = 'ZmFrZVRva2VuVmFsdWVUaGF0TXVzdE5vdExlYWtYWFg'

t.test('errors: a malformed percent-encoding in a session id is 400 invalid_request in the contract shape', async (t) => {
  assertError(t, await call(app, { method: 'GET', url: '/v1/sessions/%ZZ' }), 400, 'invalid_request')
})

t.test('errors: invalid UTF-8 percent-encoded in a userId is 400 invalid_request in the contract shape', async (t) => {
  // %ED%A0%80 is a UTF-8-encoded lone surrogate
  assertError(t, await call(app, { method: 'GET', url: '/v1/users/%ED%A0%80/sessions' }), 400, 'invalid_request')
})

t.test('errors: a malformed URL is not echoed with its query string', async (t) => {
  const res = await call(app, { method: 'GET', url: `/v1/sessions/%ZZ?sid=${SECRET}` })
  t.notOk(res.body.includes(SECRET), `body: ${res.body}`)
})

t.test('errors: a body that is not JSON is 415 unsupported_media_type', async (t) => {
  const res = await call(app, { method: 'POST', url: '/v1/sessions', payload: 'userId=42', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  assertError(t, res, 415, 'unsupported_media_type')
})

t.test('errors: a body over 64 KiB is 413 payload_too_large', async (t) => {
  const res = await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'big', data: { s: 'a'.repeat(70 * 1024) } } })
  assertError(t, res, 413, 'payload_too_large')
})

t.test('errors: malformed JSON is 400 invalid_request and does not echo the body', async (t) => {
  const res = await call(app, { method: 'POST', url: '/v1/sessions/validate', payload: `{"token":"${SECRET}"`, headers: { 'content-type': 'application/json' } })
  assertError(t, res, 400, 'invalid_request')
  t.notOk(res.body.includes(SECRET))
})

t.test('errors: an unknown route is 404 not_found', async (t) => {
  assertError(t, await call(app, { method: 'GET', url: '/v1/nothing-here' }), 404, 'not_found')
})

t.test('errors: a missing API key is 401 invalid_api_key', async (t) => {
  assertError(t, await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'x' }, key: null }), 401, 'invalid_api_key')
})

t.test('errors: an unknown API key is 401 invalid_api_key', async (t) => {
  assertError(t, await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'x' }, key: 'not-a-configured-key-123' }), 401, 'invalid_api_key')
})

t.test('errors: a sessions-scope key on an admin route is 403 forbidden', async (t) => {
  assertError(t, await call(app, { method: 'GET', url: '/v1/admin/stats' }), 403, 'forbidden')
})

t.test('errors: a validation error does not echo a token given in the wrong field type', async (t) => {
  const res = await call(app, { method: 'POST', url: '/v1/sessions/validate', payload: { token: [SECRET] } })
  assertError(t, res, 400, 'invalid_request')
  t.notOk(res.body.includes(SECRET))
})
