// What trying the kit from scratch apps found: a helper's error answered (not rethrown), a wrong API key loud, the app's
// own revocations forgotten at once, the feed's state after an outage, and Express's denials configurable.
import t from 'tap'
import type { Test } from 'tap'
import { createClient } from '../../packages/client/src/index.js'
import type { SessionGuardOptions } from '../../packages/client/src/core.js'
import { APP_KEY } from '../helpers/app.js'
import { firstN, listeningService, sleep, startProxy, unavailableBody, waitFor } from '../client/_support.js'
import { expressBackend, fastifyBackend, login, request, type Backend } from './_apps.js'

type MakeBackend = (t: Test, options: SessionGuardOptions) => Promise<Backend>
const BACKENDS: Array<[string, MakeBackend]> = [['express', expressBackend], ['fastify', fastifyBackend]]

for (const [kind, make] of BACKENDS) {
  t.test(`${kind}: touch and rotate without a cookie, answered by fail(): 401 not_found, not a 500`, async (t) => {
    const service = await listeningService(t)
    const backend = await make(t, { baseUrl: service.base, apiKey: APP_KEY })
    for (const path of ['/touch-any', '/rotate-any']) {
      const res = await request(backend.base, 'POST', path)
      t.equal(res.status, 401, `${path}: 401`)
      t.match(res.json, { error: { code: 'session_invalid', reason: 'not_found' } }, `${path}: the contract's body`)
    }
  })

  t.test(`${kind}: the app's own revocations leave its cache at once, with the helper and through the guard's client`, async (t) => {
    const service = await listeningService(t)
    const proxy = await startProxy(t, service.base)
    // The feed gets its position, then every long-poll hangs: only the guard itself can drop what the app revoked.
    proxy.intercept((seen) => (seen.path === '/v1/revocations' && seen.query.has('since') ? { action: 'hang' } : undefined))
    const backend = await make(t, { baseUrl: proxy.base, apiKey: APP_KEY, cacheTtlMs: 30_000 })
    t.ok(await waitFor(() => backend.guard.stats().cursor !== undefined, 10_000), 'the feed has a position: the cache is on')

    for (const route of ['/password', '/password-client']) {
      const user = `fix-own-${kind}${route.replace('/', '-')}`
      const current = await login(backend.base, user)
      const others = [await login(backend.base, user), await login(backend.base, user)]
      for (const other of others) {
        await request(backend.base, 'GET', '/me', { token: other.token })
        t.equal((await request(backend.base, 'GET', '/me', { token: other.token })).status, 200)
      }
      t.ok(backend.guard.stats().entries >= 2, 'the other sessions are cached')
      const changed = await request(backend.base, 'POST', route, { token: current.token })
      t.equal(changed.status, 200, `${route} answered`)
      t.same(changed.json, { revoked: 2 })
      let accepted = 0
      for (let i = 0; i < 15; i++) {
        for (const other of others) if ((await request(backend.base, 'GET', '/me', { token: other.token })).status !== 401) accepted++
      }
      t.equal(accepted, 0, `${route}: no request with a revoked session is accepted afterwards`)
      t.equal((await request(backend.base, 'GET', '/me', { token: current.token })).status, 200, `${route}: the current session stays`)
    }
  })
}

t.test('express: a wrong API key is loud: logged by default, and answered 500 service_misconfigured', async (t) => {
  const service = await listeningService(t)
  const errors: unknown[][] = []
  const original = console.error
  console.error = (...args: unknown[]) => { errors.push(args) }
  t.teardown(() => { console.error = original })
  const backend = await expressBackend(t, { baseUrl: service.base, apiKey: 'not-the-key-0123456789', followRevocations: false })
  const res = await request(backend.base, 'GET', '/me', { token: 'a'.repeat(43) })
  console.error = original
  t.equal(res.status, 500)
  t.match(res.json, { error: { code: 'service_misconfigured' } })
  t.ok(errors.some((args) => /API key/.test(args.map(String).join(' '))), 'an error line names the API key')
})

t.test('express: onDenied answers a denial its own way; the optional path tells why a cookie was refused', async (t) => {
  const service = await listeningService(t)
  const client = createClient({ baseUrl: service.base, apiKey: APP_KEY })
  const backend = await expressBackend(t, { baseUrl: service.base, apiKey: APP_KEY })
  const page = await fetch(`${backend.base}/page`, { redirect: 'manual' })
  t.equal(page.status, 302)
  t.equal(page.headers.get('location'), '/login?reason=not_found')
  t.equal((await request(backend.base, 'GET', '/me')).status, 401, 'the JSON answer where onDenied did not answer')

  const issued = await client.create({ userId: 'fix-why' })
  t.same((await request(backend.base, 'GET', '/maybe-why', { token: issued.token })).json, { userId: 'fix-why', reason: null })
  await client.revoke(issued.token)
  t.ok(await waitFor(async () => (await request(backend.base, 'GET', '/maybe-why', { token: issued.token })).json.reason === 'revoked', 5000), 'reason revoked')
  t.same((await request(backend.base, 'GET', '/maybe-why')).json, { userId: null, reason: null }, 'no cookie: nothing was refused')
})

t.test('the feed says following as soon as the service answers again, not after a long-poll', async (t) => {
  const service = await listeningService(t)
  const proxy = await startProxy(t, service.base)
  const client = createClient({ baseUrl: service.base, apiKey: APP_KEY })
  const backend = await fastifyBackend(t, { baseUrl: proxy.base, apiKey: APP_KEY, cacheTtlMs: 30_000, revocationWaitSeconds: 25 })
  t.ok(await waitFor(() => backend.guard.stats().feed === 'following', 10_000))
  // The long-poll (with since) is waiting at the service before the outage starts.
  t.ok(await waitFor(() => proxy.seen.some((s) => s.path === '/v1/revocations' && s.query.has('since')), 5000))
  await sleep(100)
  proxy.intercept(firstN(2, (s) => s.path === '/v1/revocations', { status: 503, body: unavailableBody }))
  // A revocation ends the waiting long-poll; the next two meet the outage.
  const other = await client.create({ userId: 'fix-feed' })
  await client.revoke(other.token)
  t.ok(await waitFor(() => backend.guard.stats().feed === 'backing_off', 10_000), 'backing off during the outage')
  const started = Date.now()
  t.ok(await waitFor(() => backend.guard.stats().feed === 'following', 8000), 'following again within seconds of the service answering')
  t.ok(proxy.seen.filter((s) => s.path === '/v1/revocations').length >= 5, 'start, the waiting poll, two failures, the recovery')
  t.comment(`backing_off → following in ${Date.now() - started} ms`)
})
