// Cookie tossing: the session cookie's name sent twice is refused (401 not_found), never guessed, unless it has the __Host-
// prefix; the same for GET /v1/auth and for the integration kit's middleware.
import t from 'tap'
import { readCookie, SessionGuard } from '../../packages/client/src/core.js'
import { APP_KEY, call, setup } from '../helpers/app.js'
import { assertSessionInvalid, issue, reconfigure } from '../sessions/_support.js'

const base = await setup(t)
const { app } = base
const auth = (cookie: string) => call(app, { method: 'GET', url: '/v1/auth', headers: { cookie } })

t.test('auth: the session cookie sent twice is 401 not_found, whichever comes first', async (t) => {
  const victim = await issue(app, { userId: 'victim' })
  const attacker = await issue(app, { userId: 'attacker' })
  assertSessionInvalid(t, await auth(`sid=${attacker.token}; sid=${victim.token}`), 'not_found')
  assertSessionInvalid(t, await auth(`sid=${victim.token}; theme=dark; sid=${attacker.token}`), 'not_found')
  assertSessionInvalid(t, await auth(`sid=${victim.token}; sid=`), 'not_found')
  // Two Cookie header lines are one list to Node: still twice.
  const twoLines = await app.inject({ method: 'GET', url: '/v1/auth', headers: { authorization: `Bearer ${APP_KEY}`, cookie: [`sid=${victim.token}`, `sid=${attacker.token}`] } })
  assertSessionInvalid(t, twoLines, 'not_found')
})

t.test('auth: X-Session-Token does not rescue an ambiguous cookie', async (t) => {
  const victim = await issue(app, { userId: 'victim-h' })
  const res = await call(app, { method: 'GET', url: '/v1/auth', headers: { cookie: `sid=${victim.token}; sid=${victim.token}`, 'x-session-token': victim.token } })
  assertSessionInvalid(t, res, 'not_found')
})

t.test('auth: once, or beside cookies of similar names, the session cookie still works', async (t) => {
  const { token, session } = await issue(app, { userId: 'one' })
  for (const cookie of [`sid=${token}`, `xsid=a; sid=${token}; sid2=b; _sid=c`]) {
    const res = await auth(cookie)
    t.equal(res.statusCode, 200, `${cookie.replace(token, '<token>')}: ${res.body.slice(0, 120)}`)
    t.equal(res.headers['x-session-id'], session.id)
  }
})

t.test('auth: with a __Host- name, only this host can set it, so the first of two is used', async (t) => {
  const hostOnly = await reconfigure(t, base, { COOKIE_NAME: '__Host-sid' })
  const { token, session } = await issue(hostOnly.app, { userId: 'host' })
  const res = await call(hostOnly.app, { method: 'GET', url: '/v1/auth', headers: { cookie: `__Host-sid=${token}; __Host-sid=other` } })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['x-session-id'], session.id)
})

t.test('middleware: readCookie refuses a name sent twice, except with __Host-', async (t) => {
  t.equal(readCookie('sid=a', 'sid'), 'a')
  t.equal(readCookie('sid=a; sid=b', 'sid'), undefined)
  t.equal(readCookie(['sid=a', 'sid=b'], 'sid'), undefined)
  t.equal(readCookie('sid=a; sid=', 'sid'), undefined)
  t.equal(readCookie('xsid=a; sid=b; sid2=c', 'sid'), 'b')
  t.equal(readCookie('__Host-sid=a; __Host-sid=b', '__Host-sid'), 'a')
})

t.test('middleware: authenticate answers 401 not_found for a name sent twice, without asking the service', async (t) => {
  // Nothing listens here: a call to the service would fail as unavailable, not as 401.
  const guard = new SessionGuard({ baseUrl: 'http://127.0.0.1:9', apiKey: APP_KEY, followRevocations: false, clientOptions: { retries: 0 } })
  const result = await guard.authenticate('sid=a0000000000000000000000000000000000000000000; sid=b0000000000000000000000000000000000000000000')
  t.match(result, { ok: false, status: 401, body: { error: { code: 'session_invalid', reason: 'not_found' } } })
})
