// Many HTTP clients send Content-Type: application/json on every request, a DELETE included: an empty body there means no
// body on a route that takes none, and is still "the JSON body is empty" on a route that needs one.
import t from 'tap'
import { ADMIN_KEY, call, setup } from '../helpers/app.js'
import { createSession, validate } from '../helpers/sessions.js'

const { app } = await setup(t)
const json = { 'content-type': 'application/json' }

t.test('DELETE /v1/sessions/{id} with Content-Type: application/json and no body: 204, the session is revoked', async (t) => {
  const { token, session } = await createSession(app, { userId: 'empty-body' })
  const res = await call(app, { method: 'DELETE', url: `/v1/sessions/${session.id}`, headers: json })
  t.equal(res.statusCode, 204, res.body)
  t.equal((await validate(app, token)).statusCode, 401, 'revoked')
})

t.test('DELETE /v1/users/{userId}/sessions with Content-Type: application/json; charset=utf-8 and no body: 200', async (t) => {
  await createSession(app, { userId: 'empty-body-all' })
  const res = await call(app, { method: 'DELETE', url: '/v1/users/empty-body-all/sessions', headers: { 'content-type': 'application/json; charset=utf-8' } })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { revoked: 1 })
})

t.test('POST /v1/admin/prune and GET /v1/auth with Content-Type: application/json and no body: not a 400', async (t) => {
  t.equal((await call(app, { method: 'POST', url: '/v1/admin/prune', key: ADMIN_KEY, headers: json })).statusCode, 200)
  t.equal((await call(app, { method: 'GET', url: '/v1/auth', headers: json })).statusCode, 401, 'no token: 401, not a body error')
})

t.test('a route that needs a body still says the JSON body is empty', async (t) => {
  for (const url of ['/v1/sessions', '/v1/sessions/validate', '/v1/sessions/revoke']) {
    const res = await call(app, { method: 'POST', url, headers: json, payload: '' })
    t.equal(res.statusCode, 400, url)
    t.match(res.json(), { error: { code: 'invalid_request', message: 'the JSON body is empty' } }, url)
  }
})

t.test('a body that is only whitespace, or broken, is still refused', async (t) => {
  const { session } = await createSession(app, { userId: 'empty-body-ws' })
  t.equal((await call(app, { method: 'DELETE', url: `/v1/sessions/${session.id}`, headers: json, payload: '{' })).statusCode, 400, 'broken JSON')
  t.equal((await call(app, { method: 'POST', url: '/v1/sessions', headers: json, payload: ' ' })).statusCode, 400, 'whitespace on a route that needs a body')
})
