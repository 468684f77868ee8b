// GET /v1/auth (nginx auth_request): the token from the session cookie or X-Session-Token, never the URL; answers in headers.
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import { revoke } from '../helpers/sessions.js'
import { assertError, assertSessionInvalid, issue, reconfigure } from '../sessions/_support.js'

const base = await setup(t)
const { app } = base

const auth = (headers: Record<string, string> = {}, url = '/v1/auth') => call(app, { method: 'GET', url, headers })

t.test('auth: the sid cookie is 200 with X-Session-Id, X-User-Id and the session', async (t) => {
  const { token, session } = await issue(app, { userId: '42' })
  const res = await auth({ cookie: `sid=${token}` })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['x-session-id'], session.id)
  t.equal(res.headers['x-user-id'], '42')
  t.same(Object.keys(res.json()), ['session'])
  t.equal(res.json().session.id, session.id)
})

t.test('auth: X-User-Id carries a non-ASCII userId percent-encoded as encodeURIComponent does', async (t) => {
  const { token } = await issue(app, { userId: 'Zoë 42/x' })
  const res = await auth({ cookie: `sid=${token}` })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['x-user-id'], encodeURIComponent('Zoë 42/x'))
  t.equal(res.headers['x-user-id'], 'Zo%C3%AB%2042%2Fx')
})

t.test('auth: the session cookie among other cookies is found', async (t) => {
  const { token, session } = await issue(app, { userId: 'au-many' })
  const res = await auth({ cookie: `theme=dark; sid=${token}; lang=en` })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['x-session-id'], session.id)
})

t.test('auth: the X-Session-Token header works without a cookie', async (t) => {
  const { token, session } = await issue(app, { userId: 'au-header' })
  const res = await auth({ 'x-session-token': token })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['x-session-id'], session.id)
})

t.test('auth: no token is 401 not_found', async (t) => {
  assertSessionInvalid(t, await auth(), 'not_found')
})

t.test('auth: a token only in the URL (?sid=) is refused as an unknown query parameter (400), never used or echoed', async (t) => {
  const { token } = await issue(app, { userId: 'au-url-sid' })
  const res = await auth({}, `/v1/auth?sid=${token}`)
  t.equal(res.statusCode, 400)
  t.match(res.json(), { error: { code: 'invalid_request' } })
  t.notOk(res.body.includes(token), 'the token is not echoed')
})

t.test('auth: a token only in the URL (?token=) is refused as an unknown query parameter (400), never used or echoed', async (t) => {
  const { token } = await issue(app, { userId: 'au-url-token' })
  const res = await auth({}, `/v1/auth?token=${token}`)
  t.equal(res.statusCode, 400)
  t.match(res.json(), { error: { code: 'invalid_request' } })
  t.notOk(res.body.includes(token), 'the token is not echoed')
})

t.test('auth: a revoked token is 401 revoked', async (t) => {
  const { token } = await issue(app, { userId: 'au-revoked' })
  await revoke(app, token)
  assertSessionInvalid(t, await auth({ cookie: `sid=${token}` }), 'revoked', 'logout')
})

t.test('auth: a revoked answer carries no session headers', async (t) => {
  const { token } = await issue(app, { userId: 'au-revoked-headers' })
  await revoke(app, token)
  const res = await auth({ cookie: `sid=${token}` })
  t.equal(res.headers['x-session-id'], undefined)
  t.equal(res.headers['x-user-id'], undefined)
})

t.test('auth: a malformed cookie value is 401 not_found', async (t) => {
  assertSessionInvalid(t, await auth({ cookie: 'sid=garbage' }), 'not_found')
})

t.test('auth: without an API key it is 401 invalid_api_key', async (t) => {
  const { token } = await issue(app, { userId: 'au-nokey' })
  const res = await call(app, { method: 'GET', url: '/v1/auth', headers: { cookie: `sid=${token}` }, key: null })
  assertError(t, res, 401, 'invalid_api_key')
})

t.test('auth with COOKIE_NAME=__Host-sid', async (t) => {
  const { app } = await reconfigure(t, base, { COOKIE_NAME: '__Host-sid' })

  t.test('auth: the cookie of the configured name is read', async (t) => {
    const { token, session } = await issue(app, { userId: 'au-host' })
    const res = await call(app, { method: 'GET', url: '/v1/auth', headers: { cookie: `__Host-sid=${token}` } })
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.headers['x-session-id'], session.id)
  })

  t.test('auth: a cookie named sid is not read', async (t) => {
    const { token } = await issue(app, { userId: 'au-host-sid' })
    const res = await call(app, { method: 'GET', url: '/v1/auth', headers: { cookie: `sid=${token}` } })
    assertSessionInvalid(t, res, 'not_found')
  })
})
