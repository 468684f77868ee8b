// setCookie: the ready Set-Cookie value from the cookie settings; lifetime attributes follow the session's absolute deadline.
import t from 'tap'
import { setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { revoke, rotate } from '../helpers/sessions.js'
import { attributeNames, issue, parseCookie, reconfigure, seconds } from './_support.js'

const base = await setup(t, { SESSION_ABSOLUTE_TIMEOUT: '86400' })
const { app, sql } = base

t.test('cookie defaults: name sid, value the token', async (t) => {
  const { token, setCookie } = await issue(app, { userId: 'ck-name' })
  const cookie = parseCookie(setCookie)
  t.equal(cookie.name, 'sid')
  t.equal(cookie.value, token)
})

t.test('cookie defaults: HttpOnly', async (t) => {
  t.equal(parseCookie((await issue(app, { userId: 'ck-http' })).setCookie).httpOnly, true)
})

t.test('cookie defaults: Secure', async (t) => {
  t.equal(parseCookie((await issue(app, { userId: 'ck-secure' })).setCookie).secure, true)
})

t.test('cookie defaults: SameSite=Lax', async (t) => {
  t.match(parseCookie((await issue(app, { userId: 'ck-samesite' })).setCookie).sameSite, /^lax$/i)
})

t.test('cookie defaults: Path=/', async (t) => {
  t.equal(parseCookie((await issue(app, { userId: 'ck-path' })).setCookie).path, '/')
})

t.test('cookie defaults: no Domain', async (t) => {
  const { setCookie } = await issue(app, { userId: 'ck-domain' })
  t.equal(parseCookie(setCookie).domain, undefined)
  t.notOk(attributeNames(setCookie).includes('domain'))
})

t.test('cookie: Max-Age is the remaining absolute lifetime at create', async (t) => {
  const { setCookie, session } = await issue(app, { userId: 'ck-maxage' })
  const remaining = seconds(session.expiresAt) - seconds(session.lastSeenAt)
  t.ok(Math.abs(parseCookie(setCookie).maxAge! - remaining) <= 1, `Max-Age ${parseCookie(setCookie).maxAge} ≈ ${remaining}`)
  t.ok(Math.abs(parseCookie(setCookie).maxAge! - 86400) <= 1, 'the absolute timeout')
})

t.test('cookie: Expires is session.expiresAt to the second', async (t) => {
  const { setCookie, session } = await issue(app, { userId: 'ck-expires' })
  t.equal(parseCookie(setCookie).expires!.getTime() / 1000, Math.floor(seconds(session.expiresAt)))
})

t.test('cookie: after rotating an aged session Max-Age is what remains of the absolute lifetime', async (t) => {
  const { token, session } = await issue(app, { userId: 'ck-rotate' })
  await ageSession(sql, session.id, { seconds: 3600 })
  const rotated = (await rotate(app, token)).json()
  const cookie = parseCookie(rotated.setCookie)
  t.ok(Math.abs(cookie.maxAge! - (86400 - 3600)) <= 1, `Max-Age ${cookie.maxAge} ≈ ${86400 - 3600}`)
  t.equal(cookie.expires!.getTime() / 1000, Math.floor(seconds(rotated.session.expiresAt)))
})

t.test('cookie: at most 4096 bytes', async (t) => {
  const { setCookie } = await issue(app, { userId: 'ck-len' })
  t.ok(Buffer.byteLength(setCookie) <= 4096, `${Buffer.byteLength(setCookie)} bytes`)
})

t.test('cookie settings from the environment', async (t) => {
  const { app } = await reconfigure(t, base, { COOKIE_DOMAIN: 'example.com', COOKIE_PATH: '/app', COOKIE_SAMESITE: 'strict', COOKIE_SECURE: 'false', COOKIE_NAME: 'app_sid' })
  const { token, setCookie } = await issue(app, { userId: 'ck-env' })
  const cookie = parseCookie(setCookie)

  t.test('cookie: COOKIE_NAME sets the name', async (t) => {
    t.equal(cookie.name, 'app_sid')
    t.equal(cookie.value, token)
  })
  t.test('cookie: COOKIE_DOMAIN sets Domain', async (t) => {
    t.match(cookie.domain, /^\.?example\.com$/)
  })
  t.test('cookie: COOKIE_PATH sets Path', async (t) => {
    t.equal(cookie.path, '/app')
  })
  t.test('cookie: COOKIE_SAMESITE=strict sets SameSite=Strict', async (t) => {
    t.match(cookie.sameSite, /^strict$/i)
  })
  t.test('cookie: COOKIE_SECURE=false drops Secure', async (t) => {
    t.notOk(cookie.secure)
    t.notOk(attributeNames(setCookie).includes('secure'))
  })
  t.test('cookie: HttpOnly stays', async (t) => {
    t.equal(cookie.httpOnly, true)
  })
  t.test('cookie: the clearing cookie of revoke uses the same Domain and Path', async (t) => {
    const res = await revoke(app, token)
    const cleared = parseCookie(res.headers['set-cookie'])
    t.equal(cleared.name, 'app_sid')
    t.match(cleared.domain, /^\.?example\.com$/)
    t.equal(cleared.path, '/app')
  })
})

t.test('cookie: COOKIE_SAMESITE=none sets SameSite=None with Secure', async (t) => {
  const { app } = await reconfigure(t, base, { COOKIE_SAMESITE: 'none' })
  const cookie = parseCookie((await issue(app, { userId: 'ck-none' })).setCookie)
  t.match(cookie.sameSite, /^none$/i)
  t.equal(cookie.secure, true)
})
