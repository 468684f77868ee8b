// The middleware's revocation-feed follower through a proxy that misbehaves on cue: 410 flushes and restarts, errors back off,
// and a validation that left the service before a revocation is not cached after it.
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { createClient } from '../../packages/client/src/index.js'
import type { GuardLogger } from '../../packages/client/src/core.js'
import { APP_KEY } from '../helpers/app.js'
import { firstN, listeningService, startProxy, unavailableBody, waitFor } from '../client/_support.js'
import { fastifyBackend, login, request } from './_apps.js'

const expiredBody = { error: { code: 'cursor_expired', message: 'the cursor is older than the audit log keeps (or unknown): flush and start again without since', details: [] } }

function recordingLogger() {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = []
  const at = (level: string) => (obj: object, msg: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg }) }
  const logger: GuardLogger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
  return { logger, lines }
}

t.test('410 cursor_expired: the cache is flushed, the feed starts again without since, and keeps dropping revoked sessions', async (t) => {
  const service = await listeningService(t)
  const proxy = await startProxy(t, service.base)
  const client = createClient({ baseUrl: service.base, apiKey: APP_KEY })
  const backend = await fastifyBackend(t, { baseUrl: proxy.base, apiKey: APP_KEY, cacheTtlMs: 30_000, revocationWaitSeconds: 5 })
  t.ok(await waitFor(() => backend.guard.stats().feed === 'following', 10_000))

  const { token } = await login(backend.base, 'f-410')
  await request(backend.base, 'GET', '/me', { token })
  t.equal(backend.guard.stats().entries, 1, 'the session is cached')

  proxy.intercept(firstN(1, (s) => s.path === '/v1/revocations' && s.query.has('since'), { status: 410, body: expiredBody }))
  const flushes = backend.guard.stats().flushes
  const seenBefore = proxy.seen.length
  // Something else is revoked: the waiting long-poll answers, and the next one (with since) meets the 410.
  const other = await client.create({ userId: 'f-410-other' })
  await client.revoke(other.token)
  t.ok(await waitFor(() => backend.guard.stats().flushes >= flushes + 2 && backend.guard.stats().feed === 'following', 10_000), 'flushed on the 410, and again at the new position')
  t.equal(backend.guard.stats().entries, 0, 'the cache is empty')
  const after = proxy.seen.slice(seenBefore).filter((s) => s.path === '/v1/revocations')
  const expiredAt = after.findIndex((s) => s.query.has('since'))
  t.ok(expiredAt >= 0 && after.slice(expiredAt + 1).some((s) => !s.query.has('since')), 'the feed started again without since after the 410')

  const misses = backend.guard.stats().misses
  t.equal((await request(backend.base, 'GET', '/me', { token })).status, 200)
  t.equal(backend.guard.stats().misses, misses + 1, 'the next request went to the service')
  await request(backend.base, 'GET', '/me', { token })

  await client.revoke(token)
  const revokedAt = performance.now()
  t.ok(await waitFor(async () => (await request(backend.base, 'GET', '/me', { token })).status === 401, 30_000, 5), 'a revocation after the restart still drops the session')
  t.comment(`after the 410 restart: revoke answered → cached session refused in ${(performance.now() - revokedAt).toFixed(1)} ms (TTL 30000 ms)`)
})

t.test('feed errors back off, then the feed recovers', async (t) => {
  const service = await listeningService(t)
  const proxy = await startProxy(t, service.base)
  const { logger, lines } = recordingLogger()
  proxy.intercept(firstN(3, (s) => s.path === '/v1/revocations', { status: 503, body: unavailableBody, headers: { 'retry-after': '2' } }))
  const backend = await fastifyBackend(t, { baseUrl: proxy.base, apiKey: APP_KEY, cacheTtlMs: 30_000, logger })
  t.ok(await waitFor(() => backend.guard.stats().feed === 'following', 20_000), 'following after three failures')
  const delays = lines.filter((l) => l.msg.startsWith('revocation feed failed')).map((l) => l.obj.delayMs as number)
  t.equal(delays.length, 3, 'each failure was logged with its backoff')
  const starts = proxy.seen.filter((s) => s.path === '/v1/revocations').slice(0, 4)
  t.same(starts.map((s) => s.query.has('since')), [false, false, false, false], 'one request per attempt, each a fresh start')
  t.comment(`backoff delays after 503s: ${delays.join(', ')} ms`)
})

t.test('a validation answered before a revocation but arriving after it is not cached', async (t) => {
  const service = await listeningService(t)
  const proxy = await startProxy(t, service.base)
  const client = createClient({ baseUrl: service.base, apiKey: APP_KEY })
  const backend = await fastifyBackend(t, { baseUrl: proxy.base, apiKey: APP_KEY, cacheTtlMs: 30_000 })
  t.ok(await waitFor(() => backend.guard.stats().feed === 'following', 10_000))
  const issued = await client.create({ userId: 'f-race' })

  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  let answered = false
  proxy.intercept(firstN(1, (s) => s.path === '/v1/sessions/validate', { action: 'hold', released, onHeld: () => { answered = true } }))
  const pending = request(backend.base, 'GET', '/me', { token: issued.token })
  // The service must have answered before the revoke is sent; the proxy holds that answer back.
  t.ok(await waitFor(() => answered, 5000), 'the service answered the validation, and the proxy holds the answer')
  const seen = backend.guard.stats().revocationsSeen
  await client.revoke(issued.token)
  t.ok(await waitFor(() => backend.guard.stats().revocationsSeen > seen, 5000), 'the revocation arrived through the feed')
  release()
  t.equal((await pending).status, 200, 'the held answer (valid when given) is used for its request')
  t.equal(backend.guard.stats().entries, 0, 'but not cached')
  t.match((await request(backend.base, 'GET', '/me', { token: issued.token })).json, { error: { reason: 'revoked', revokeReason: 'logout' } })
})
