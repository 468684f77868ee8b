// POST /v1/sessions/revoke: logout with a clearing Set-Cookie; idempotent, and the first reason stays.
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import { revoke, validate } from '../helpers/sessions.js'
import { assertError, assertSessionInvalid, eventCount, issue, parseCookie, row } from './_support.js'

const { app, sql } = await setup(t)

async function revokedCount(): Promise<number> {
  const [{ count }] = await sql<{ count: number }[]>`select count(*)::int as count from sessions where revoked_at is not null`
  return count
}

t.test('revoke: 204 with an empty body', async (t) => {
  const { token } = await issue(app, { userId: 'rv-204' })
  const res = await revoke(app, token)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
})

t.test('revoke: the Set-Cookie clears the session cookie', async (t) => {
  const { token, setCookie } = await issue(app, { userId: 'rv-cookie' })
  const res = await revoke(app, token)
  const issued = parseCookie(setCookie)
  const cleared = parseCookie(res.headers['set-cookie'])
  t.equal(cleared.name, issued.name, 'same name')
  t.equal(cleared.path, issued.path, 'same Path')
  t.equal(cleared.domain, issued.domain, 'same Domain')
  t.equal(cleared.httpOnly, true, 'HttpOnly')
  t.equal(cleared.value, '', 'empty value')
  const expired = cleared.maxAge === 0 || (cleared.expires !== undefined && cleared.expires.getTime() < Date.now())
  t.ok(expired, `Max-Age=0 or a past Expires (${String(res.headers['set-cookie'])})`)
})

t.test('revoke: the token then validates as 401 revoked/logout', async (t) => {
  const { token } = await issue(app, { userId: 'rv-logout' })
  await revoke(app, token)
  assertSessionInvalid(t, await validate(app, token), 'revoked', 'logout')
})

t.test('revoke: a custom reason is recorded', async (t) => {
  const { token, session } = await issue(app, { userId: 'rv-reason' })
  await revoke(app, token, 'user_clicked_everywhere')
  assertSessionInvalid(t, await validate(app, token), 'revoked', 'user_clicked_everywhere')
  t.equal((await row(sql, session.id))?.revoke_reason, 'user_clicked_everywhere')
})

t.test('revoke: a second revoke is 204 and the first reason stays', async (t) => {
  const { token, session } = await issue(app, { userId: 'rv-twice' })
  await revoke(app, token, 'first')
  const revokedAt = (await row(sql, session.id))?.revoked_at
  const res = await revoke(app, token, 'second')
  t.equal(res.statusCode, 204)
  const after = await row(sql, session.id)
  t.equal(after?.revoke_reason, 'first')
  t.same(after?.revoked_at, revokedAt, 'revokedAt unchanged')
})

t.test('revoke: an unknown well-formed token is 204 and changes nothing', async (t) => {
  await issue(app, { userId: 'rv-bystander' })
  const [revokedBefore, eventsBefore] = [await revokedCount(), await eventCount(sql)]
  const res = await revoke(app, 'U'.repeat(43))
  t.equal(res.statusCode, 204)
  t.equal(await revokedCount(), revokedBefore)
  t.equal(await eventCount(sql), eventsBefore)
})

t.test('revoke: a malformed token is 204 and changes nothing', async (t) => {
  const [revokedBefore, eventsBefore] = [await revokedCount(), await eventCount(sql)]
  for (const token of ['', 'x', 'A'.repeat(44), 'é'.repeat(43)]) t.equal((await revoke(app, token)).statusCode, 204, JSON.stringify(token.slice(0, 5)))
  t.equal(await revokedCount(), revokedBefore)
  t.equal(await eventCount(sql), eventsBefore)
})

t.test('revoke: a reason with a control character is a 400 and revokes nothing', async (t) => {
  const { token } = await issue(app, { userId: 'rv-badreason' })
  assertError(t, await revoke(app, token, 'bad\nreason'), 400, 'invalid_request')
  t.equal((await validate(app, token)).statusCode, 200)
})

t.test('revoke: a missing token is a 400', async (t) => {
  assertError(t, await revoke(app, undefined), 400, 'invalid_request')
})

t.test('revoke: a logout with a token rotated moments ago ends the session; one rotated long ago does not', async (t) => {
  const { token } = await issue(app, { userId: 'rv-rotated' })
  const rotated = await call(app, { method: 'POST', url: '/v1/sessions/rotate', payload: { token } })
  t.equal(rotated.statusCode, 200)
  t.equal((await revoke(app, token)).statusCode, 204)
  assertSessionInvalid(t, await validate(app, rotated.json().token), 'revoked', 'logout')

  const old = await issue(app, { userId: 'rv-rotated-old' })
  const later = await call(app, { method: 'POST', url: '/v1/sessions/rotate', payload: { token: old.token } })
  await sql`update rotated_tokens set rotated_at = now() - interval '1 minute' where session_id = ${later.json().session.id}`
  t.equal((await revoke(app, old.token)).statusCode, 204)
  t.equal((await validate(app, later.json().token)).statusCode, 200, 'a token replaced a minute ago no longer logs the session out')
})
