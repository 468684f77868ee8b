// One suite for both middlewares (they share src/middleware/core.ts): run against the real service on loopback.
import { performance } from 'node:perf_hooks'
import type { Test } from 'tap'
import { createClient } from '../../packages/client/src/index.js'
import type { SessionGuardOptions } from '../../packages/client/src/core.js'
import { APP_KEY } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { freePort } from '../support/process.js'
import { listeningService, sleep, waitFor } from '../client/_support.js'
import { login, request, tokenOf, type Backend } from './_apps.js'

type MakeBackend = (t: Test, options: SessionGuardOptions) => Promise<Backend>

const following = (backend: Backend) => waitFor(() => backend.guard.stats().feed === 'following', 10_000)

export function behaves(t: Test, kind: string, make: MakeBackend): void {
  t.test(`${kind}: the session cookie, the cache and the helpers`, async (t) => {
    const service = await listeningService(t)
    const client = createClient({ baseUrl: service.base, apiKey: APP_KEY })
    const options = { baseUrl: service.base, apiKey: APP_KEY }

    t.test('no cookie: 401 not_found; the optional middleware leaves the session null', async (t) => {
      const backend = await make(t, options)
      const res = await request(backend.base, 'GET', '/me')
      t.equal(res.status, 401)
      t.match(res.json, { error: { code: 'session_invalid', reason: 'not_found' } })
      t.same((await request(backend.base, 'GET', '/maybe')).json, { userId: null })
      t.same((await request(backend.base, 'GET', '/maybe', { token: 'garbage' })).json, { userId: null })
    })

    t.test('login passes the service Set-Cookie on; the cookie then authenticates, with the expiry headers', async (t) => {
      const backend = await make(t, options)
      t.ok(await following(backend), 'the revocation feed is followed')
      const { token, setCookie, answer } = await login(backend.base, 'm-login')
      t.match(setCookie, /^sid=[A-Za-z0-9_-]{43}; .*HttpOnly/, 'the cookie as the service built it')
      const session = (answer.json as { session: { idleExpiresAt: string; expiresAt: string; id: string } }).session
      t.equal(answer.headers.get('x-session-idle-expires-at'), session.idleExpiresAt, 'login answers with the expiry headers too')

      const me = await request(backend.base, 'GET', '/me', { token })
      t.equal(me.status, 200)
      t.same(me.json, { id: session.id, userId: 'm-login' })
      t.equal(me.headers.get('x-session-idle-expires-at'), session.idleExpiresAt)
      t.equal(me.headers.get('x-session-expires-at'), session.expiresAt)
      t.same((await request(backend.base, 'GET', '/maybe', { token })).json, { userId: 'm-login' })

      const before = backend.guard.stats()
      for (let i = 0; i < 5; i++) t.equal((await request(backend.base, 'GET', '/me', { token })).status, 200)
      t.equal(backend.guard.stats().hits - before.hits, 5, 'answered from the cache')
    })

    t.test('401 carries the reason: not_found, idle_timeout, expired, revoked + revokeReason', async (t) => {
      const backend = await make(t, options)
      const reasonOf = async (token: string) => {
        const res = await request(backend.base, 'GET', '/me', { token })
        t.equal(res.status, 401)
        return res.json.error
      }
      t.match(await reasonOf('not-a-token'), { reason: 'not_found' })
      const idle = await client.create({ userId: 'm-reasons' })
      await ageSession(service.sql, idle.session.id, { seconds: 7201 })
      t.match(await reasonOf(idle.token), { code: 'session_invalid', reason: 'idle_timeout' })
      const old = await client.create({ userId: 'm-reasons' })
      await ageSession(service.sql, old.session.id, { seconds: 604801 })
      t.match(await reasonOf(old.token), { reason: 'expired' })
      const gone = await client.create({ userId: 'm-reasons' })
      await client.revokeUserSessions('m-reasons', { reason: 'password_change' })
      t.match(await reasonOf(gone.token), { reason: 'revoked', revokeReason: 'password_change' })
    })

    t.test('a session revoked elsewhere leaves the cache through the revocation feed, long before the TTL', async (t) => {
      const ttlMs = 30_000
      const backend = await make(t, { ...options, cacheTtlMs: ttlMs })
      t.ok(await following(backend), 'the revocation feed is followed')
      const delays: number[] = []
      for (let round = 0; round < 5; round++) {
        const { token } = await login(backend.base, `m-feed-${round}`)
        await request(backend.base, 'GET', '/me', { token })
        const hits = backend.guard.stats().hits
        t.equal((await request(backend.base, 'GET', '/me', { token })).status, 200)
        t.equal(backend.guard.stats().hits, hits + 1, 'cached before the revoke')

        // Another node (here: the service itself) ends the session.
        await client.revoke(token)
        const revokedAt = performance.now()
        let last = 200
        await waitFor(async () => (last = (await request(backend.base, 'GET', '/me', { token })).status) === 401, ttlMs, 5)
        const delayMs = performance.now() - revokedAt
        t.equal(last, 401, `round ${round}: refused`)
        t.ok(delayMs < ttlMs, `round ${round}: before the cache TTL`)
        delays.push(delayMs)
      }
      t.comment(`${kind}: revoke answered → cached session refused: ${delays.map((d) => d.toFixed(1)).join(', ')} ms (TTL ${ttlMs} ms)`)
      const res = await request(backend.base, 'GET', '/me', { token: 'x' })
      t.equal(res.status, 401)
    })

    t.test('rotate passes the new cookie on; the old one answers revoked/rotated at once', async (t) => {
      const backend = await make(t, { ...options, cacheTtlMs: 30_000 })
      await following(backend)
      const { token } = await login(backend.base, 'm-rotate')
      await request(backend.base, 'GET', '/me', { token })
      const rotated = await request(backend.base, 'POST', '/rotate', { token })
      t.equal(rotated.status, 200)
      const fresh = tokenOf(rotated.setCookies[0])
      t.not(fresh, token)
      t.match((await request(backend.base, 'GET', '/me', { token })).json, { error: { reason: 'revoked', revokeReason: 'rotated' } })
      t.equal((await request(backend.base, 'GET', '/me', { token: fresh })).status, 200)
    })

    t.test('touch extends idleExpiresAt and the headers; after the session ended, 401 with the reason', async (t) => {
      const backend = await make(t, options)
      const { token, answer } = await login(backend.base, 'm-touch')
      const session = (answer.json as { session: { id: string; idleExpiresAt: string } }).session
      await ageSession(service.sql, session.id, { seconds: 30 })
      const touched = await request(backend.base, 'POST', '/touch', { token })
      t.equal(touched.status, 200)
      const after = touched.headers.get('x-session-idle-expires-at')!
      t.ok(Date.parse(after) > Date.parse(session.idleExpiresAt) - 30_000, 'the idle deadline moved forward from the aged one')
      t.equal(after, (touched.json as { session: { idleExpiresAt: string } }).session.idleExpiresAt)

      await client.revokeUserSessions('m-touch', { reason: 'admin' })
      const late = await request(backend.base, 'POST', '/touch', { token })
      t.equal(late.status, 401)
      t.match(late.json, { error: { reason: 'revoked', revokeReason: 'admin' } })
    })

    t.test('logout passes the clearing Set-Cookie on; the cookie then answers revoked/logout', async (t) => {
      const backend = await make(t, options)
      const { token } = await login(backend.base, 'm-logout')
      const out = await request(backend.base, 'POST', '/logout', { token })
      t.equal(out.status, 204)
      t.match(out.setCookies[0], /^sid=;.*Max-Age=0/)
      t.match((await request(backend.base, 'GET', '/me', { token })).json, { error: { reason: 'revoked', revokeReason: 'logout' } })
    })

    t.test('the service unreachable: 503 with Retry-After, not a 401', async (t) => {
      const port = await freePort()
      const backend = await make(t, { baseUrl: `http://127.0.0.1:${port}`, apiKey: APP_KEY, followRevocations: false, clientOptions: { retries: 0 } })
      const res = await request(backend.base, 'GET', '/me', { token: 'a'.repeat(43) })
      t.equal(res.status, 503)
      t.match(res.json, { error: { code: 'unavailable' } })
      t.ok(res.headers.get('retry-after'))
    })

    t.test('close stops the revocation feed', async (t) => {
      const backend = await make(t, options)
      t.ok(await following(backend))
      await sleep(50) // the long-poll is now waiting at the service
      const started = performance.now()
      await backend.close()
      t.equal(backend.guard.stats().feed, 'stopped')
      t.comment(`${kind}: close with a long-poll in flight took ${(performance.now() - started).toFixed(1)} ms`)
    })
  })
}
