// POST /v1/sessions/rotate: a new token for the same session; the old one stops at once, exactly once under races.
import t from 'tap'
import { setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { revoke, rotate, validate } from '../helpers/sessions.js'
import { TOKEN_FORMAT, assertError, assertSessionInvalid, issue, parseCookie } from './_support.js'

const { app, sql } = await setup(t)

t.test('rotate: 200 with a new well-formed token, the session and setCookie', async (t) => {
  const { token } = await issue(app, { userId: 'r-shape' })
  const res = await rotate(app, token)
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['session', 'setCookie', 'token'])
  t.match(body.token, TOKEN_FORMAT)
  t.not(body.token, token)
})

t.test('rotate: the new token validates', async (t) => {
  const { token } = await issue(app, { userId: 'r-new' })
  const rotated = (await rotate(app, token)).json()
  t.equal((await validate(app, rotated.token)).statusCode, 200)
})

t.test('rotate: the old token is 401 revoked/rotated', async (t) => {
  const { token } = await issue(app, { userId: 'r-old' })
  await rotate(app, token)
  assertSessionInvalid(t, await validate(app, token), 'revoked', 'rotated')
})

t.test('rotate: keeps the session id, data and version', async (t) => {
  const { token, session } = await issue(app, { userId: 'r-same', data: { lang: 'de', companies: [1, 3] } })
  const rotated = (await rotate(app, token)).json()
  t.equal(rotated.session.id, session.id)
  t.same(rotated.session.data, { lang: 'de', companies: [1, 3] })
  t.equal(rotated.session.version, session.version)
  const validated = (await validate(app, rotated.token)).json()
  t.equal(validated.session.id, session.id)
})

t.test('rotate: setCookie carries the new token', async (t) => {
  const { token } = await issue(app, { userId: 'r-cookie' })
  const rotated = (await rotate(app, token)).json()
  const cookie = parseCookie(rotated.setCookie)
  t.equal(cookie.name, 'sid')
  t.equal(cookie.value, rotated.token)
})

t.test('rotate: rotating an old token again is 401 revoked/rotated', async (t) => {
  const { token } = await issue(app, { userId: 'r-again' })
  const first = (await rotate(app, token)).json()
  assertSessionInvalid(t, await rotate(app, token), 'revoked', 'rotated')
  t.equal((await validate(app, first.token)).statusCode, 200, 'the current token is untouched')
})

t.test('rotate: a revoked session is 401 revoked/logout', async (t) => {
  const { token } = await issue(app, { userId: 'r-revoked' })
  await revoke(app, token)
  assertSessionInvalid(t, await rotate(app, token), 'revoked', 'logout')
})

t.test('rotate: an idle session is 401 idle_timeout and gets no new token', async (t) => {
  const { token, session } = await issue(app, { userId: 'r-idle' })
  await ageSession(sql, session.id, { seconds: 7201 })
  assertSessionInvalid(t, await rotate(app, token), 'idle_timeout')
})

t.test('rotate: an unknown token is 401 not_found', async (t) => {
  assertSessionInvalid(t, await rotate(app, 'R'.repeat(43)), 'not_found')
})

t.test('rotate: a malformed token is 401 not_found', async (t) => {
  assertSessionInvalid(t, await rotate(app, 'short'), 'not_found')
})

t.test('rotate: a missing token is a 400', async (t) => {
  assertError(t, await rotate(app, undefined), 400, 'invalid_request')
})

t.test('rotate: 20 parallel rotations of one token give exactly one 200', async (t) => {
  const { token } = await issue(app, { userId: 'r-race' })
  const results = await Promise.all(Array.from({ length: 20 }, () => rotate(app, token)))
  const statuses = results.map((res) => res.statusCode)
  t.equal(statuses.filter((s) => s === 200).length, 1, `statuses ${statuses.join(',')}`)
  t.equal(statuses.filter((s) => s === 401).length, 19)
  for (const res of results.filter((r) => r.statusCode === 401)) t.match(res.json(), { error: { code: 'session_invalid', reason: 'revoked', revokeReason: 'rotated' } })
})

t.test('rotate: after 20 parallel rotations exactly one token validates', async (t) => {
  const { token } = await issue(app, { userId: 'r-race-one' })
  const results = await Promise.all(Array.from({ length: 20 }, () => rotate(app, token)))
  const issued = results.filter((res) => res.statusCode === 200).map((res) => res.json().token as string)
  const candidates = [token, ...issued]
  const valid: string[] = []
  for (const candidate of candidates) {
    const res = await validate(app, candidate, { touch: false })
    if (res.statusCode === 200) valid.push(candidate)
  }
  t.equal(valid.length, 1, `${valid.length} of ${candidates.length} tokens validate`)
  const [{ count }] = await sql<{ count: number }[]>`select count(*)::int as count from sessions where user_id = 'r-race-one'`
  t.equal(count, 1, 'still one session')
  t.not(valid[0], token, 'not the original')
})
