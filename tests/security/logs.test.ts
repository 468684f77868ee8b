// At level trace, with the service's own pino options, no token, key secret, Authorization or cookie value reaches the log.
import { createHash } from 'node:crypto'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { ADMIN_KEY, APP_KEY, OTHER_APP_KEY } from '../helpers/app.js'
import { appWithCapturedLog } from '../helpers/logs.js'

const WRONG_KEY = 'wrong-secret-0123456789abcdef'

t.test('the log never holds tokens, key secrets, Authorization or cookie values', async (t) => {
  const { app, logger, text: captured, lines } = await appWithCapturedLog(t, 'trace')
  t.equal(logger.level, 'trace', 'logging at trace')

  const tokens: string[] = []
  const secrets: string[] = [APP_KEY, OTHER_APP_KEY, ADMIN_KEY, WRONG_KEY]
  const headerValues: string[] = []
  let requests = 0
  const missing: string[] = []

  // Sends one request and checks that a line with its route and status was logged for it.
  async function send(options: InjectOptions & { key?: string }, route: string): Promise<LightMyRequestResponse> {
    const { key = APP_KEY, headers = {}, ...rest } = options
    const allHeaders: Record<string, string> = { authorization: `Bearer ${key}`, ...(headers as Record<string, string>) }
    headerValues.push(allHeaders.authorization, ...(allHeaders.cookie === undefined ? [] : [allHeaders.cookie]))
    const before = lines().length
    const res = await app.inject({ ...rest, headers: allHeaders })
    requests += 1
    const deadline = Date.now() + 1000
    let found = false
    while (!found && Date.now() < deadline) {
      found = lines().slice(before).some((line) => line.route === route && line.statusCode === res.statusCode)
      if (!found) await new Promise((resolve) => setImmediate(resolve))
    }
    if (!found) missing.push(`${options.method} ${options.url} → ${res.statusCode}`)
    return res
  }

  const created = await send({ method: 'POST', url: '/v1/sessions', payload: { userId: 'log-user', data: { lang: 'en' } } }, '/v1/sessions')
  t.equal(created.statusCode, 201)
  const { token, session } = created.json() as { token: string; session: { id: string } }
  tokens.push(token)

  t.equal((await send({ method: 'POST', url: '/v1/sessions/validate', payload: { token } }, '/v1/sessions/validate')).statusCode, 200, 'validate')
  t.equal((await send({ method: 'POST', url: '/v1/sessions/touch', payload: { token } }, '/v1/sessions/touch')).statusCode, 200, 'touch')
  const rotated = await send({ method: 'POST', url: '/v1/sessions/rotate', payload: { token } }, '/v1/sessions/rotate')
  t.equal(rotated.statusCode, 200, 'rotate')
  const current = (rotated.json() as { token: string }).token
  tokens.push(current)
  t.equal((await send({ method: 'POST', url: '/v1/sessions/validate', payload: { token } }, '/v1/sessions/validate')).statusCode, 401, 'old token after rotate')

  t.equal((await send({ method: 'GET', url: '/v1/auth', headers: { cookie: `sid=${current}` } }, '/v1/auth')).statusCode, 200, 'auth by cookie')
  t.equal((await send({ method: 'GET', url: '/v1/auth', headers: { 'x-session-token': current } }, '/v1/auth')).statusCode, 200, 'auth by header')
  t.equal((await send({ method: 'GET', url: `/v1/auth?sid=${current}` }, '/v1/auth')).statusCode, 400, 'a token in ?sid= is not accepted')
  t.equal((await send({ method: 'GET', url: `/v1/auth?token=${current}` }, '/v1/auth')).statusCode, 400, 'a token in ?token= is not accepted')
  t.equal((await send({ method: 'POST', url: `/v1/sessions/validate?token=${current}`, payload: { token: 'x' } }, '/v1/sessions/validate')).statusCode, 400, 'a token in ?token= next to a bad token')
  t.equal((await send({ method: 'POST', url: '/v1/sessions/validate', payload: { token: 'Z'.repeat(43) } }, '/v1/sessions/validate')).statusCode, 401, 'unknown well-formed token')
  t.equal((await send({ method: 'POST', url: '/v1/sessions/validate', payload: { token: current, extra: current } }, '/v1/sessions/validate')).statusCode, 400, 'unknown field next to a token')
  t.equal((await send({ method: 'POST', url: '/v1/sessions/validate', payload: { token: current }, key: WRONG_KEY }, '/v1/sessions/validate')).statusCode, 401, 'wrong API key')
  t.equal((await send({ method: 'GET', url: '/v1/admin/stats' }, '/v1/admin/stats')).statusCode, 403, 'sessions key on admin')
  t.equal((await send({ method: 'GET', url: '/v1/admin/events', key: ADMIN_KEY }, '/v1/admin/events')).statusCode, 200, 'admin events')
  t.equal((await send({ method: 'PATCH', url: `/v1/sessions/${session.id}`, payload: { data: { theme: 'dark' } } }, '/v1/sessions/:id')).statusCode, 200, 'patch')
  t.equal((await send({ method: 'POST', url: '/v1/sessions/revoke', payload: { token: current } }, '/v1/sessions/revoke')).statusCode, 204, 'revoke')
  t.equal((await send({ method: 'GET', url: '/v1/auth', headers: { cookie: `sid=${current}` } }, '/v1/auth')).statusCode, 401, 'auth after revoke')

  const text = captured()
  t.ok(text.length > 0, `captured ${lines().length} log lines`)
  const hashes = tokens.flatMap((tok) => {
    const digest = createHash('sha256').update(tok).digest()
    return [digest.toString('hex'), digest.toString('base64'), digest.toString('base64url')]
  })
  for (const tok of tokens) t.notOk(text.includes(tok), `token ${tok.slice(0, 6)}… is not in the log`)
  for (const hash of hashes) t.notOk(text.includes(hash), `token hash ${hash.slice(0, 6)}… is not in the log`)
  for (const secret of secrets) t.notOk(text.includes(secret), `API key secret ${secret.slice(0, 6)}… is not in the log`)
  for (const value of new Set(headerValues)) t.notOk(text.includes(value), `header value ${value.slice(0, 12)}… is not in the log`)
  t.same(missing, [], `each of ${requests} requests has a log line with route and statusCode`)
})

t.test('a token sent in a URL path (as an id, in a 404 path, percent-encoded) or a query string never reaches the log', async (t) => {
  const { app, text: captured, lines } = await appWithCapturedLog(t, 'trace')
  const created = await app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: `Bearer ${APP_KEY}` }, payload: { userId: 'path-user' } })
  const { token, session } = created.json() as { token: string; session: { id: string } }
  const allHex = (s: string) => [...s].map((ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`).join('')
  const urls = [
    `/v1/sessions/${token}`,
    `/v1/sessions/${allHex(token)}`,
    `/v1/users/${token}/sessions`,
    `/v1/sessions/${token}?reason=${token}`,
    `/v1/sessions/${session.id}?token=${token}`,
    `/nope/${token}`,
    `/nope/sid=${token}?sid=${token}`,
    `/v1/sessions/${token}%E0%A4%A`,
    `/v1/sessions/${token}${'x'.repeat(4100)}`,
  ]
  for (const url of urls) {
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await app.inject({ method, url, headers: { authorization: `Bearer ${APP_KEY}` } })
      t.ok(res.statusCode < 500, `${method} ${url.slice(0, 40)}…: ${res.statusCode}`)
    }
  }
  await new Promise((resolve) => setImmediate(resolve))
  const text = captured()
  t.notOk(text.includes(token), 'the token is not in the log')
  t.notOk(text.includes(token.slice(0, 32)), 'nor its first 32 characters')
  const requestLines = lines().filter((line) => line.msg === 'request completed')
  t.equal(requestLines.length, 1 + urls.length * 2, 'every request has its line')
  t.ok(requestLines.some((line) => line.route === '/v1/sessions/:id' && line.url === '/v1/sessions/[redacted]'), 'the line keeps the route and shows where the token was')
  t.ok(requestLines.some((line) => line.url === `/v1/sessions/${session.id}`), 'a session id is still logged')
})
