// The operator console's routes: static pages under a strict CSP, sign-in with an admin key into a console session,
// wrong keys throttled, the cookie standing for the key on the admin and session routes, CSRF refusal, and sign-out.
import t from 'tap'
import { parseSetCookie } from 'set-cookie-parser'
import { loadConfig } from '../../src/config.js'
import { CONSOLE_CSP } from '../../src/console/routes.js'
import { ADMIN_KEY, APP_KEY, BASE_ENV, buildNode, call, setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { validate } from '../helpers/sessions.js'
import { assertError, assertSessionInvalid, events, issue, row } from '../sessions/_support.js'
import { appWithCapturedLog } from '../helpers/logs.js'
import { asConsole, ORIGIN, postSignIn, signIn } from './_support.js'

const base = await setup(t)
const { app, sql } = base

t.test('every console answer carries the CSP, framing and sniffing headers', async (t) => {
  for (const url of ['/console/', '/console/app.js', '/console/console.css', '/console/bowser.mjs', '/console/missing.js', '/console/api/session', '/console/nope/deeper']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.headers['content-security-policy'], CONSOLE_CSP, `${url} (${res.statusCode}) has the CSP`)
    t.match(res.headers['content-security-policy'], /default-src 'self'/)
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/)
    t.notMatch(res.headers['content-security-policy'], /unsafe-inline|unsafe-eval|https?:/, 'no inline script or style, no other origin')
    t.equal(res.headers['x-frame-options'], 'DENY')
    t.equal(res.headers['x-content-type-options'], 'nosniff')
  }
})

t.test('the console is served: its page, modules and style sheet, and /console redirects to /console/', async (t) => {
  const page = await app.inject({ method: 'GET', url: '/console/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /<script type="module" src="app.js"><\/script>/)
  t.notMatch(page.body, /<script>|<style|style="|\son[a-z]+="/, 'no inline script, style or handler')
  const js = await app.inject({ method: 'GET', url: '/console/app.js' })
  t.equal(js.statusCode, 200)
  t.match(js.headers['content-type'], /javascript/)
  const bowser = await app.inject({ method: 'GET', url: '/console/bowser.mjs' })
  t.equal(bowser.statusCode, 200)
  t.match(bowser.headers['content-type'], /^text\/javascript/)
  t.match(bowser.body, /export \{/, 'the ES module build of bowser')
  for (const header of ['if-match', 'if-unmodified-since']) {
    const conditional = await app.inject({ method: 'GET', url: '/console/', headers: { [header]: header === 'if-match' ? '"nope"' : 'Thu, 01 Jan 1970 00:00:00 GMT' } })
    t.equal(conditional.statusCode, 200, `${header} on a console file is ignored, not a 500`)
  }
  const redirect = await app.inject({ method: 'GET', url: '/console' })
  t.equal(redirect.statusCode, 302)
  t.equal(redirect.headers.location, '/console/')
  assertError(t, await app.inject({ method: 'GET', url: '/console/..%2Fpackage.json' }), 400, 'invalid_request')
  assertError(t, await app.inject({ method: 'GET', url: '/console/missing.js' }), 404, 'not_found')
  assertError(t, await app.inject({ method: 'GET', url: '/console/api/session?x=1' }), 400, 'invalid_request')
})

t.test('sign-in with an admin key opens a console session: HttpOnly, SameSite=Strict cookie, audited as console:<key>', async (t) => {
  const login = await signIn(app)
  const [cookie] = parseSetCookie(login.res.headers['set-cookie'] as string)
  t.equal(cookie.name, 'console_sid')
  t.equal(cookie.httpOnly, true)
  t.equal(cookie.sameSite, 'Strict')
  t.equal(cookie.path, '/console', 'sent by browsers only below /console, never to another app on this host name')
  t.notOk(cookie.secure, 'not Secure while the service listens on loopback')
  t.equal(cookie.maxAge, 28800, 'lives at most the absolute timeout')
  const body = login.res.json()
  t.match(body, { mode: 'key', actor: 'console:ops', csrfToken: /^[A-Za-z0-9_-]{43}$/, sessionId: /^s_/ })
  t.notMatch(login.res.body, new RegExp(ADMIN_KEY), 'the key is not echoed')
  t.notMatch(login.res.body, new RegExp(cookie.value), 'the token is only in the cookie')
  const stored = await row(sql, login.sessionId)
  t.match(stored, { user_id: 'console:ops', policy: 'console', idle_timeout: 900 })
  const [{ life }] = await sql<{ life: number }[]>`select extract(epoch from expires_at - created_at)::int as life from sessions where id = ${login.sessionId}`
  t.equal(life, 28800, 'absolute deadline 8 h')
  const [created] = await events(sql, login.sessionId)
  t.match(created, { type: 'created', actor: 'console:ops', user_id: 'console:ops' })
  const me = await app.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: login.cookie } })
  t.equal(me.statusCode, 200)
  t.match(me.json(), { mode: 'key', actor: 'console:ops', csrfToken: body.csrfToken })
})

t.test('the cookie is Secure when the service listens beyond loopback', async (t) => {
  const { app: exposed } = await buildNode(t, base.url, { HOST: '0.0.0.0' })
  const res = await postSignIn(exposed, ADMIN_KEY)
  t.equal(res.statusCode, 200)
  t.equal(parseSetCookie(res.headers['set-cookie'] as string)[0].secure, true)
})

t.test('CONSOLE_IDLE_TIMEOUT and CONSOLE_ABSOLUTE_TIMEOUT set the console policy', async (t) => {
  const { app: custom } = await buildNode(t, base.url, { CONSOLE_IDLE_TIMEOUT: '120', CONSOLE_ABSOLUTE_TIMEOUT: '3600' })
  const login = await signIn(custom)
  t.equal(parseSetCookie(login.res.headers['set-cookie'] as string)[0].maxAge, 3600)
  const [stored] = await sql<{ idle: number; life: number }[]>`
    select idle_timeout as idle, extract(epoch from expires_at - created_at)::int as life from sessions where id = ${login.sessionId}`
  t.same(stored, { idle: 120, life: 3600 })
})

t.test('CONSOLE_* timeouts are validated at start', async (t) => {
  t.throws(() => loadConfig({ ...BASE_ENV, CONSOLE_IDLE_TIMEOUT: '10' }), /CONSOLE_IDLE_TIMEOUT must be between 60 and 86400/)
  t.throws(() => loadConfig({ ...BASE_ENV, CONSOLE_ABSOLUTE_TIMEOUT: '8h' }), /CONSOLE_ABSOLUTE_TIMEOUT must be a whole number/)
  t.same(loadConfig(BASE_ENV).console, { idleTimeout: 900, absoluteTimeout: 28800 })
  t.throws(() => loadConfig({ ...BASE_ENV, COOKIE_NAME: 'console_sid' }), /COOKIE_NAME must not be console_sid/)
})

t.test('sign-in refuses an app key, an unknown key, and a request from another origin', async (t) => {
  assertError(t, await postSignIn(app, APP_KEY, { remoteAddress: '10.1.0.1' }), 401, 'invalid_api_key')
  assertError(t, await postSignIn(app, 'not-a-key-0123456789', { remoteAddress: '10.1.0.2' }), 401, 'invalid_api_key')
  assertError(t, await postSignIn(app, ADMIN_KEY, { origin: null }), 403, 'csrf_refused')
  assertError(t, await postSignIn(app, ADMIN_KEY, { origin: 'https://evil.example' }), 403, 'csrf_refused')
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from sessions where policy = 'console' and ip in ('10.1.0.1', '10.1.0.2')`
  t.equal(n, 0, 'no console session was opened')
})

t.test('wrong keys are throttled per address: three are free, then each waits longer, even with the right key', async (t) => {
  const address = '10.9.9.9'
  for (let i = 1; i <= 3; i++) assertError(t, await postSignIn(app, `wrong-key-${i}-0123456789`, { remoteAddress: address }), 401, 'invalid_api_key')
  assertError(t, await postSignIn(app, 'wrong-key-4-0123456789', { remoteAddress: address }), 401, 'invalid_api_key')
  const throttled = await postSignIn(app, ADMIN_KEY, { remoteAddress: address })
  assertError(t, throttled, 429, 'too_many_attempts')
  t.equal(throttled.headers['retry-after'], '1')
  t.equal(throttled.json().error.retryAfter, 1)
  const other = await postSignIn(app, ADMIN_KEY, { remoteAddress: '10.9.9.10' })
  t.equal(other.statusCode, 200, 'another address is not affected')
})

t.test('the console cookie stands for its admin key on the admin routes, reads need no CSRF token', async (t) => {
  const login = await signIn(app)
  const stats = await app.inject({ method: 'GET', url: '/console/v1/admin/stats', headers: { cookie: login.cookie } })
  t.equal(stats.statusCode, 200, stats.body)
  const listing = await app.inject({ method: 'GET', url: '/console/v1/admin/sessions?policy=console', headers: { cookie: login.cookie } })
  t.equal(listing.statusCode, 200)
  t.ok(listing.json().sessions.some((s: { session: { id: string } }) => s.session.id === login.sessionId))
  assertError(t, await app.inject({ method: 'GET', url: '/console/v1/admin/stats' }), 401, 'invalid_api_key')
  assertError(t, await app.inject({ method: 'GET', url: '/console/v1/admin/stats', headers: { cookie: 'console_sid=garbage' } }), 401, 'invalid_api_key')
  // An Authorization header always decides on its own: a wrong key is not rescued by the cookie.
  assertError(t, await app.inject({ method: 'GET', url: '/console/v1/admin/stats', headers: { cookie: login.cookie, authorization: 'Bearer wrong-0123456789abcdef' } }), 401, 'invalid_api_key')
})

t.test('the console cookie opens nothing on the plain /v1 routes: there only a bearer key counts', async (t) => {
  const login = await signIn(app)
  // What another app on the same host name could replay server-side, Origin forged and CSRF token read from the console.
  assertError(t, await app.inject({ method: 'GET', url: '/v1/admin/sessions', headers: { cookie: login.cookie } }), 401, 'invalid_api_key')
  assertError(t, await app.inject({ method: 'GET', url: '/v1/admin/stats', headers: asConsole(login) }), 401, 'invalid_api_key')
  const { token, session } = await issue(app, { userId: 'replayed' })
  assertError(t, await app.inject({ method: 'DELETE', url: `/v1/sessions/${session.id}?reason=replayed`, headers: asConsole(login) }), 401, 'invalid_api_key')
  assertError(t, await app.inject({ method: 'DELETE', url: '/v1/users/replayed/sessions?reason=replayed', headers: asConsole(login) }), 401, 'invalid_api_key')
  t.equal((await validate(app, token)).statusCode, 200, 'the refused calls changed nothing')
  // A bearer key still works on the same routes, with or without a console cookie beside it.
  t.equal((await call(app, { method: 'GET', url: '/v1/admin/stats', key: ADMIN_KEY })).statusCode, 200)
})

t.test('under /console/v1 the routes are the same: their query checks, CSRF on changes, their route in the log and metrics', async (t) => {
  const { app: logged, lines } = await appWithCapturedLog(t, 'info')
  const login = await signIn(logged)
  assertError(t, await logged.inject({ method: 'GET', url: '/console/v1/admin/sessions?user_id=x', headers: { cookie: login.cookie } }), 400, 'invalid_request')
  const { token, session } = await issue(logged, { userId: 'prefixed' })
  const url = `/console/v1/sessions/${session.id}?reason=prefixed`
  assertError(t, await logged.inject({ method: 'DELETE', url, headers: { cookie: login.cookie } }), 403, 'csrf_refused')
  assertError(t, await logged.inject({ method: 'DELETE', url, headers: asConsole(login, { csrf: null }) }), 403, 'csrf_refused')
  t.equal((await validate(logged, token)).statusCode, 200, 'refused calls changed nothing')
  t.equal((await logged.inject({ method: 'DELETE', url, headers: asConsole(login) })).statusCode, 204)
  const audit = await logged.inject({ method: 'GET', url: `/console/v1/admin/events?sessionId=${session.id}&type=revoked`, headers: { cookie: login.cookie } })
  t.equal(audit.statusCode, 200, audit.body)
  t.match(audit.json().events, [{ type: 'revoked', actor: 'console:ops', reason: 'prefixed' }])
  await new Promise((resolve) => setImmediate(resolve))
  const ended = lines().find((line) => line.msg === 'request completed' && line.method === 'DELETE' && line.statusCode === 204)
  t.match(ended, { route: '/v1/sessions/:id', url: `/console/v1/sessions/${session.id}`, key: 'console:ops' })
  const metrics = await logged.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, /http_requests_total\{[^}]*route="\/v1\/sessions\/:id"[^}]*status="204"/)
  t.notMatch(metrics.body, /route="\/console\/v1/, 'one label per route, whichever way it was called')
  // Only the prefix is rewritten: nothing else under /console reaches the API.
  assertError(t, await logged.inject({ method: 'GET', url: '/console/v1', headers: { cookie: login.cookie } }), 400, 'invalid_request')
})

t.test('an app session token in the console cookie is no console session', async (t) => {
  const { token } = await issue(app, { userId: 'console:ops' })
  assertError(t, await app.inject({ method: 'GET', url: '/console/v1/admin/stats', headers: { cookie: `console_sid=${token}` } }), 401, 'invalid_api_key')
  assertError(t, await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'console:ops', policy: 'console' } }), 400, 'invalid_request')
  t.throws(() => loadConfig({ ...BASE_ENV, SESSION_POLICIES: '{"console":{"idleTimeout":60}}' }), /SESSION_POLICIES must not define "console"/)
})

t.test('ending a session from the console needs the CSRF token and the same origin; then it is audited as console:<key>', async (t) => {
  const login = await signIn(app)
  const { token, session } = await issue(app, { userId: 'victim', ip: '198.51.100.4' })
  const url = `/console/v1/sessions/${session.id}?reason=stolen_laptop`
  assertError(t, await app.inject({ method: 'DELETE', url, headers: asConsole(login, { csrf: null }) }), 403, 'csrf_refused')
  assertError(t, await app.inject({ method: 'DELETE', url, headers: asConsole(login, { csrf: 'x'.repeat(43) }) }), 403, 'csrf_refused')
  assertError(t, await app.inject({ method: 'DELETE', url, headers: asConsole(login, { origin: null }) }), 403, 'csrf_refused')
  assertError(t, await app.inject({ method: 'DELETE', url, headers: asConsole(login, { origin: 'http://evil.example' }) }), 403, 'csrf_refused')
  t.equal((await validate(app, token)).statusCode, 200, 'refused calls changed nothing')
  const ended = await app.inject({ method: 'DELETE', url, headers: asConsole(login) })
  t.equal(ended.statusCode, 204, ended.body)
  assertSessionInvalid(t, await validate(app, token), 'revoked', 'stolen_laptop')
  const revoked = (await events(sql, session.id)).find((e) => e.type === 'revoked')
  t.match(revoked, { actor: 'console:ops', reason: 'stolen_laptop' })
})

t.test('a user\'s "sign out everywhere" from the console', async (t) => {
  const login = await signIn(app)
  await issue(app, { userId: 'everywhere' })
  await issue(app, { userId: 'everywhere' })
  const res = await app.inject({ method: 'DELETE', url: '/console/v1/users/everywhere/sessions?reason=compromised', headers: asConsole(login) })
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { revoked: 2 })
  const actors = await sql<{ actor: string }[]>`select actor from audit_events where user_id = 'everywhere' and type = 'revoked'`
  t.same(actors.map((a) => a.actor), ['console:ops', 'console:ops'])
})

t.test('sign-out revokes the console session: the cookie no longer opens anything', async (t) => {
  const login = await signIn(app)
  assertError(t, await app.inject({ method: 'DELETE', url: '/console/api/session', headers: asConsole(login, { csrf: null }) }), 403, 'csrf_refused')
  const out = await app.inject({ method: 'DELETE', url: '/console/api/session', headers: asConsole(login) })
  t.equal(out.statusCode, 204)
  const [cleared] = parseSetCookie(out.headers['set-cookie'] as string)
  t.equal(cleared.name, 'console_sid')
  t.equal(cleared.maxAge, 0)
  t.equal(cleared.path, '/console', 'the same path, or the browser would keep the cookie')
  t.match(await row(sql, login.sessionId), { revoke_reason: 'logout' })
  t.match((await events(sql, login.sessionId)).find((e) => e.type === 'revoked'), { actor: 'console:ops', reason: 'logout' })
  assertError(t, await app.inject({ method: 'GET', url: '/console/v1/admin/stats', headers: { cookie: login.cookie } }), 401, 'invalid_api_key')
  assertError(t, await app.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: login.cookie } }), 401, 'invalid_api_key')
})

t.test('a console session ends after its idle timeout, measured by the database', async (t) => {
  const login = await signIn(app)
  await ageSession(sql, login.sessionId, { seconds: 901 })
  assertError(t, await app.inject({ method: 'GET', url: '/console/v1/admin/stats', headers: { cookie: login.cookie } }), 401, 'invalid_api_key')
})

t.test('a console session of a key that is no longer configured opens nothing', async (t) => {
  const login = await signIn(app)
  const { app: rotatedKeys } = await buildNode(t, base.url, { ADMIN_API_KEYS: 'newops:another-secret-0123456789' })
  assertError(t, await rotatedKeys.inject({ method: 'GET', url: '/console/v1/admin/stats', headers: { cookie: login.cookie } }), 401, 'invalid_api_key')
})

t.test('with no keys configured the console is open, to loopback clients only', async (t) => {
  const config = loadConfig({ LOG_LEVEL: 'silent', DATABASE_URL: base.url })
  t.equal(config.apiKeys.length, 0)
  const { app: open } = await buildNode(t, base.url, { API_KEYS: '', ADMIN_API_KEYS: '' })
  const me = await open.inject({ method: 'GET', url: '/console/api/session' })
  t.equal(me.statusCode, 200)
  t.same(me.json(), { mode: 'open', actor: 'anonymous', csrfToken: null })
  assertError(t, await open.inject({ method: 'GET', url: '/console/', remoteAddress: '192.0.2.10' }), 403, 'forbidden')
  assertError(t, await open.inject({ method: 'GET', url: '/console/api/session', remoteAddress: '192.0.2.10' }), 403, 'forbidden')
})

t.test('the admin session listing filters by IP address or CIDR block', async (t) => {
  const ips = ['203.0.113.7', '203.0.113.200', '198.51.100.9', 'not an address', '2001:db8::5']
  for (const ip of ips) await issue(app, { userId: 'ipfilter', ip })
  const list = async (ip: string) => {
    const res = await call(app, { method: 'GET', url: `/v1/admin/sessions?userId=ipfilter&ip=${encodeURIComponent(ip)}`, key: ADMIN_KEY })
    t.equal(res.statusCode, 200, res.body)
    return (res.json().sessions as Array<{ session: { ip: string } }>).map((s) => s.session.ip).sort()
  }
  t.same(await list('203.0.113.7'), ['203.0.113.7'])
  t.same(await list('203.0.113.0/24'), ['203.0.113.200', '203.0.113.7'])
  t.same(await list('2001:db8::/32'), ['2001:db8::5'])
  t.same(await list('0.0.0.0/0'), ['198.51.100.9', '203.0.113.200', '203.0.113.7'], 'an ip that is not an address matches no block')
  for (const bad of ['203.0.113', '10.0.0.0/33', 'abc', '::/129', '10.0.0.0/']) {
    assertError(t, await call(app, { method: 'GET', url: `/v1/admin/sessions?ip=${encodeURIComponent(bad)}`, key: ADMIN_KEY }), 400, 'invalid_request')
  }
})

t.test('the audit log filters by actor, IP block and time range', async (t) => {
  const login = await signIn(app)
  const { session: byApp } = await issue(app, { userId: 'auditfilter', ip: '198.18.0.1' })
  const { session: byConsole } = await issue(app, { userId: 'auditfilter', ip: '198.18.7.9' })
  await app.inject({ method: 'DELETE', url: `/console/v1/sessions/${byConsole.id}?reason=audit_filter`, headers: asConsole(login) })
  const list = async (query: string) => {
    const res = await call(app, { method: 'GET', url: `/v1/admin/events?userId=auditfilter&${query}`, key: ADMIN_KEY })
    t.equal(res.statusCode, 200, res.body)
    return (res.json().events as Array<{ type: string; sessionId: string; actor: string }>).map((e) => `${e.type} ${e.sessionId} ${e.actor}`)
  }
  t.same(await list('actor=console%3Aops'), [`revoked ${byConsole.id} console:ops`])
  t.same(await list('ip=198.18.0.0%2F24'), [`created ${byApp.id} app`])
  t.same((await list('ip=198.18.0.0%2F15')).length, 3)
  const [{ now }] = await sql<{ now: Date }[]>`select now() + interval '1 second' as now`
  t.same(await list(`until=${encodeURIComponent('2000-01-01T00:00:00Z')}`), [], 'nothing before 2000')
  t.same((await list(`until=${encodeURIComponent(now.toISOString())}`)).length, 3)
  assertError(t, await call(app, { method: 'GET', url: '/v1/admin/events?ip=nope', key: ADMIN_KEY }), 400, 'invalid_request')
})

t.test('ORIGIN matches the Host header app.inject sends', async (t) => {
  t.equal(new URL(ORIGIN).hostname, 'localhost')
})
