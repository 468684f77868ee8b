// The typed client against the real service on loopback: every route, typed errors with reasons, safe retries only, timeouts, keep-alive.
import t from 'tap'
import { createClient, isSessionInvalid, SessionServiceError, type RetryInfo } from '../../packages/client/src/index.js'
import { freePort } from '../support/process.js'
import { ADMIN_KEY, APP_KEY } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { firstN, listeningService, startProxy, unavailableBody } from './_support.js'

async function thrown(promise: Promise<unknown>): Promise<SessionServiceError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof SessionServiceError) return err
    throw err
  }
  throw new Error('expected a SessionServiceError, the call succeeded')
}

t.test('every route of the contract answers through the client, typed', async (t) => {
  const service = await listeningService(t)
  const client = createClient({ baseUrl: service.base, apiKey: APP_KEY })
  const admin = createClient({ baseUrl: service.base, apiKey: ADMIN_KEY })

  const start = await client.revocations()
  t.same(start.revocations, [], 'without since: an empty list')
  t.match(start.nextCursor, /^\d+$/, 'and the current position')

  const issued = await client.create({ userId: 'c-1', data: { lang: 'en_US' }, ip: '203.0.113.7', userAgent: 'client-test' })
  t.match(issued, { token: String, setCookie: /^sid=/, session: { userId: 'c-1', data: { lang: 'en_US' }, version: 1, ip: '203.0.113.7' } })

  t.equal((await client.validate(issued.token)).id, issued.session.id)
  t.equal((await client.validate(issued.token, { touch: false })).id, issued.session.id)
  t.equal((await client.touch(issued.token)).id, issued.session.id)

  const auth = await client.auth(issued.token)
  t.same({ sessionId: auth.sessionId, userId: auth.userId }, { sessionId: issued.session.id, userId: 'c-1' })

  const status = await client.get(issued.session.id)
  t.equal(status.state, 'active')

  const patched = await client.patch(issued.session.id, { tz: 'Asia/Dubai' }, { ifMatch: 1 })
  t.same(patched.data, { lang: 'en_US', tz: 'Asia/Dubai' })
  t.equal(patched.version, 2)
  t.equal((await client.patch(issued.session.id, { lang: null })).version, 3, 'a patch without If-Match')

  const rotated = await client.rotate(issued.token)
  t.equal(rotated.session.id, issued.session.id, 'rotate keeps the id')
  t.not(rotated.token, issued.token)

  const other = await client.create({ userId: 'c-1' })
  t.equal((await client.listUserSessions('c-1')).length, 2)
  t.equal(await client.revokeUserSessions('c-1', { except: rotated.session.id, reason: 'password_change' }), 1)
  t.equal((await client.get(other.session.id)).revokeReason, 'password_change')

  await client.revokeById(rotated.session.id, 'admin')
  t.match(await client.get(rotated.session.id), { state: 'revoked', revokeReason: 'admin' })

  const third = await client.create({ userId: 'c-2' })
  const { setCookie } = await client.revoke(third.token)
  t.match(setCookie, /^sid=;.*Max-Age=0/, 'revoke passes the clearing cookie on')
  t.same(await client.revoke(third.token, 'logout'), { setCookie }, 'revoke is idempotent')

  const feed = await client.revocations({ since: start.nextCursor, wait: 0 })
  t.same(feed.revocations.map((r) => [r.sessionId, r.type, r.reason]), [
    [issued.session.id, 'rotated', 'rotated'],
    [other.session.id, 'revoked', 'password_change'],
    [rotated.session.id, 'revoked', 'admin'],
    [third.session.id, 'revoked', 'logout'],
  ], 'the feed lists every revocation, oldest first')
  const again = await client.revocations({ since: feed.revocations[3].cursor, wait: 0 })
  t.same(again.revocations.map((r) => r.sessionId), [third.session.id], 'a revocation\'s own cursor resumes at it: served again, never skipped')
  const quiet = await client.revocations({ since: feed.nextCursor, wait: 0 })
  t.same(quiet, { revocations: [], nextCursor: feed.nextCursor }, 'nothing new: the same cursor')

  const page = await admin.listSessions({ userId: 'c-1', limit: 1 })
  t.equal(page.sessions.length, 1)
  t.type(page.nextCursor, 'string')
  const all = []
  for await (const s of admin.allSessions({ limit: 1 })) all.push(s.session.id)
  t.equal(all.length, 3, 'allSessions follows nextCursor through every page')
  t.ok((await admin.listEvents({ sessionId: issued.session.id })).events.some((e) => e.type === 'rotated'))
  t.match(await admin.stats(), { active: 0, revoked: 3 })
  await client.create({ userId: 'c-3', policy: 'default' })
  t.equal(await admin.revokeMatching({ userId: 'c-3', reason: 'incident' }), 1)
  t.match(await admin.prune(), { deleted: Number, skipped: false })

  t.same(await client.health(), { status: 'ok' })
  t.same(await client.ready(), { ready: true, status: 'ready' })
  t.match(await client.metrics(), /http_requests_total/)
  t.match(await client.openapi(), /^openapi: 3\.1\.0/)
})

t.test('errors are typed: code, status, reason, revokeReason, currentVersion', async (t) => {
  const service = await listeningService(t, {
    SESSION_POLICIES: JSON.stringify({ single: { maxPerUser: 1, onLimit: 'reject' } }),
  })
  const client = createClient({ baseUrl: service.base, apiKey: APP_KEY })

  const unknown = await thrown(client.validate('no-such-token'))
  t.match(unknown, { status: 401, code: 'session_invalid', reason: 'not_found', revokeReason: undefined, attempts: 1 })
  t.ok(isSessionInvalid(unknown))

  const a = await client.create({ userId: 'e-1' })
  await client.revoke(a.token)
  t.match(await thrown(client.validate(a.token)), { status: 401, reason: 'revoked', revokeReason: 'logout' })

  const b = await client.create({ userId: 'e-1' })
  await client.rotate(b.token)
  t.match(await thrown(client.touch(b.token)), { reason: 'revoked', revokeReason: 'rotated' })

  const idle = await client.create({ userId: 'e-2' })
  await ageSession(service.sql, idle.session.id, { seconds: 7201 })
  t.match(await thrown(client.validate(idle.token)), { code: 'session_invalid', reason: 'idle_timeout' })

  const old = await client.create({ userId: 'e-3' })
  await ageSession(service.sql, old.session.id, { seconds: 604801 })
  t.match(await thrown(client.validate(old.token)), { reason: 'expired' })

  const c = await client.create({ userId: 'e-4' })
  const conflict = await thrown(client.patch(c.session.id, { a: 1 }, { ifMatch: 7 }))
  t.match(conflict, { status: 412, code: 'version_conflict', currentVersion: 1 })

  await client.create({ userId: 'e-5', policy: 'single' })
  t.match(await thrown(client.create({ userId: 'e-5', policy: 'single' })), { status: 409, code: 'session_limit' })
  t.match(await thrown(client.create({ userId: '' })), { status: 400, code: 'invalid_request' })
  t.match(await thrown(client.get('s_unknown')), { status: 404, code: 'not_found' })
  t.match(await thrown(client.stats()), { status: 403, code: 'forbidden' })
  t.match(await thrown(createClient({ baseUrl: service.base, apiKey: 'wrong-key-0123456789abcdef' }).validate('x')), { status: 401, code: 'invalid_api_key' })
  t.match(await thrown(client.revocations({ since: '999999999' })), { status: 410, code: 'cursor_expired' }, 'a cursor never issued is 410')

  const body = unknown.toBody()
  t.same(body.error.reason, 'not_found', 'toBody gives the contract shape back')
})

t.test('503: create and rotate are never retried; validate is, with backoff and jitter', async (t) => {
  const service = await listeningService(t)
  const proxy = await startProxy(t, service.base)
  const retries: RetryInfo[] = []
  const client = createClient({ baseUrl: proxy.base, apiKey: APP_KEY, retries: 3, retryBaseDelayMs: 20, retryMaxDelayMs: 200, onRetry: (info) => retries.push(info) })
  const unavailable = { status: 503, body: unavailableBody, headers: { 'retry-after': '2' } }

  proxy.intercept(firstN(1, (s) => s.path === '/v1/sessions', unavailable))
  const create = await thrown(client.create({ userId: 'r-1' }))
  t.match(create, { status: 503, code: 'unavailable', retryAfter: 2, attempts: 1 })
  t.equal(proxy.count('POST', '/v1/sessions'), 1, 'create: one request, no retry')
  t.equal(retries.length, 0)

  const issued = await client.create({ userId: 'r-1' })
  proxy.intercept(firstN(1, (s) => s.path === '/v1/sessions/rotate', unavailable))
  t.match(await thrown(client.rotate(issued.token)), { status: 503, attempts: 1 })
  t.equal(proxy.count('POST', '/v1/sessions/rotate'), 1, 'rotate: one request, no retry')

  proxy.intercept(firstN(2, (s) => s.path === '/v1/sessions/validate', unavailable))
  const session = await client.validate(issued.token)
  t.equal(session.id, issued.session.id, 'validate succeeds on the third attempt')
  t.equal(proxy.count('POST', '/v1/sessions/validate'), 3)
  t.same(retries.map((r) => [r.operation, r.attempt, r.error.status]), [['validate', 1, 503], ['validate', 2, 503]])
  t.comment(`validate retry delays (Retry-After 2 s capped by retryMaxDelayMs 200): ${retries.map((r) => r.delayMs).join(', ')} ms`)

  retries.length = 0
  proxy.intercept(firstN(10, (s) => s.path === '/v1/sessions/validate', unavailable))
  const exhausted = await thrown(client.validate(issued.token))
  t.match(exhausted, { status: 503, attempts: 4 }, 'retries are bounded')
  t.comment(`4 attempts, delays ${retries.map((r) => r.delayMs).join(', ')} ms`)
})

t.test('a connection that failed after the request was sent: create is not repeated, validate is', async (t) => {
  const service = await listeningService(t)
  const proxy = await startProxy(t, service.base)
  const client = createClient({ baseUrl: proxy.base, apiKey: APP_KEY, retries: 2, retryBaseDelayMs: 10 })

  proxy.intercept(firstN(1, (s) => s.path === '/v1/sessions', { action: 'reset-after' }))
  const err = await thrown(client.create({ userId: 'reset-1' }))
  t.match(err, { status: 0, code: 'connection_failed', attempts: 1 })
  t.equal(proxy.count('POST', '/v1/sessions'), 1, 'not retried')
  t.equal((await client.listUserSessions('reset-1')).length, 1, 'the create did happen, exactly once')

  const issued = await client.create({ userId: 'reset-2' })
  proxy.intercept(firstN(1, (s) => s.path === '/v1/sessions/validate', { action: 'reset-before' }))
  t.equal((await client.validate(issued.token)).id, issued.session.id, 'validate is retried after a reset')
  t.equal(proxy.count('POST', '/v1/sessions/validate'), 2)
})

t.test('connection refused: nothing was sent, so even create is retried', async (t) => {
  const service = await listeningService(t)
  const port = await freePort()
  const proxy = await startProxy(t, service.base, { port, listen: false })
  const retries: RetryInfo[] = []
  const client = createClient({
    baseUrl: `http://127.0.0.1:${port}`,
    apiKey: APP_KEY,
    retries: 3,
    retryBaseDelayMs: 20,
    onRetry: (info) => {
      retries.push(info)
      // The service "comes up" after the first refusal.
      if (retries.length === 1) void proxy.listen()
    },
  })
  const issued = await client.create({ userId: 'refused-1' })
  t.equal(issued.session.userId, 'refused-1')
  t.match(retries[0].error, { code: 'connection_failed', status: 0 })
  t.match(retries[0].error.message, /ECONNREFUSED/)
  t.equal(proxy.count('POST', '/v1/sessions'), 1, 'one request reached the service')
  t.equal((await client.listUserSessions('refused-1')).length, 1)
})

t.test('timeouts: per request, never retried; a caller abort is thrown as is', async (t) => {
  const service = await listeningService(t)
  const proxy = await startProxy(t, service.base)
  const client = createClient({ baseUrl: proxy.base, apiKey: APP_KEY, timeoutMs: 5000, retries: 3 })
  proxy.intercept((s) => (s.path === '/v1/sessions/validate' ? { action: 'hang' } : undefined))
  const err = await thrown(client.validate('x', { timeoutMs: 150 }))
  t.match(err, { status: 0, code: 'timeout', attempts: 1 })
  t.equal(proxy.count('POST', '/v1/sessions/validate'), 1, 'not retried')

  const controller = new AbortController()
  const pending = client.validate('y', { signal: controller.signal })
  setTimeout(() => controller.abort(new Error('caller gave up')), 50)
  await t.rejects(pending, { message: 'caller gave up' })
})

t.test('keep-alive: sequential requests share connections', async (t) => {
  const service = await listeningService(t)
  const client = createClient({ baseUrl: service.base, apiKey: APP_KEY })
  const { token } = await client.create({ userId: 'ka-1' })
  const before = service.connections()
  const requests = 50
  for (let i = 0; i < requests; i++) await client.validate(token)
  const opened = service.connections() - before
  t.comment(`${requests} sequential validates opened ${opened} new connection(s)`)
  t.ok(opened < requests, 'connections are reused')
})
