// The operator console at /console/: its static pages under a strict Content-Security-Policy, and sign-in / sign-out.
// Everything else the pages show or do goes through the admin and session routes of the contract, called under
// /console/v1/ (see auth.ts).
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { fastifyCookie } from '@fastify/cookie'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { KeyRing } from '../auth/api-keys.js'
import { isLoopback, type Config } from '../config.js'
import { AppError, csrfRefused, invalidApiKey, notFound, toBody, tooManyAttempts } from '../errors.js'
import { CONSOLE_PATH, checkCsrf, isSameOrigin } from './auth.js'
import { CONSOLE_COOKIE, csrfTokenFor, type ConsoleService } from './service.js'
import { SignInThrottle } from './throttle.js'

// No inline script or style anywhere, no other origin, never framed.
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

// Beside this file in src/; from dist/console/ the same folder of the source tree (the image copies it).
function assetsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const candidates = [path.join(here, 'assets'), path.resolve(here, '..', '..', 'src', 'console', 'assets')]
  const found = candidates.find((dir) => existsSync(path.join(dir, 'index.html')))
  if (found === undefined) throw new Error(`the console's assets are missing (looked in ${candidates.join(', ')})`)
  return found
}

// bowser's ES module build is one self-contained file: served as it is, no bundler needed.
function bowserModule(): Buffer {
  const entry = createRequire(import.meta.url).resolve('bowser')
  return readFileSync(path.join(path.dirname(entry), 'bowser.mjs'))
}

const NoQuery = { type: 'object', additionalProperties: false, properties: {} } as const

const AssetParams = {
  type: 'object',
  required: ['asset'],
  properties: { asset: { type: 'string', pattern: '^[a-z0-9-]+\\.(html|css|js|mjs|svg|png)$' } },
} as const

const SignInBody = {
  type: 'object',
  additionalProperties: false,
  required: ['key'],
  properties: { key: { type: 'string', minLength: 1, maxLength: 512 } },
} as const

const Me = {
  type: 'object',
  additionalProperties: false,
  required: ['mode', 'actor', 'csrfToken'],
  properties: {
    // key: signed in with an admin key; open: no keys configured (loopback development mode), no sign-in.
    mode: { type: 'string', enum: ['key', 'open'] },
    actor: { type: 'string' },
    csrfToken: { type: ['string', 'null'] },
    sessionId: { type: 'string' },
    idleExpiresAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: 'string', format: 'date-time' },
  },
} as const

export interface ConsoleRoutesOptions {
  config: Config
  ring: KeyRing
  console: ConsoleService
}

function isLoopbackPeer(address: string | undefined): boolean {
  return address !== undefined && (isLoopback(address) || address === '::ffff:127.0.0.1' || /^::ffff:127\./.test(address))
}

export async function consoleRoutes(app: FastifyInstance, { config, ring, console: consoleService }: ConsoleRoutesOptions): Promise<void> {
  const throttle = new SignInThrottle()
  const secure = !isLoopback(config.host)
  // Sent by browsers only below /console: never to another application served on the same host name.
  const cookieOptions = { httpOnly: true, secure, sameSite: 'strict' as const, path: CONSOLE_PATH }
  const bowser = bowserModule()

  app.addHook('onRequest', async (req, reply) => {
    void reply.headers({
      'content-security-policy': CONSOLE_CSP,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      'cache-control': 'no-cache',
    })
    // The files are read-only and carry no version a precondition could guard; @fastify/send would fail an If-Match
    // it cannot meet with an error outside the contract's codes.
    delete req.headers['if-match']
    delete req.headers['if-unmodified-since']
    // Without keys every caller is an admin: the console then serves loopback clients only (the service itself may
    // listen only on loopback then, but a local proxy could still forward other machines' requests).
    if (ring.open && !isLoopbackPeer(req.socket.remoteAddress)) {
      throw new AppError(403, 'forbidden', 'with no API keys configured the console is open to loopback clients only')
    }
  })
  app.setNotFoundHandler((_req, reply) => reply.code(404).send(toBody(notFound('no such console page'))))

  // The assets are one flat folder, served through one documented route; @fastify/send does types, ETags and refuses
  // anything outside the folder.
  await app.register(fastifyStatic, { root: assetsDir(), serve: false, cacheControl: false, dotfiles: 'deny' })

  app.get('/', { prefixTrailingSlash: 'no-slash', schema: { querystring: NoQuery } }, async (_req, reply) => reply.redirect('/console/'))
  app.get('/', { prefixTrailingSlash: 'slash', schema: { querystring: NoQuery } }, async (_req, reply) => reply.sendFile('index.html'))
  app.get<{ Params: { asset: string } }>('/:asset', { schema: { params: AssetParams, querystring: NoQuery } }, async (req, reply) => {
    if (req.params.asset === 'bowser.mjs') return reply.type('text/javascript; charset=utf-8').send(bowser)
    return reply.sendFile(req.params.asset)
  })

  function describe(token: string, row: { id: string; idle_expires_at: Date; expires_at: Date }, actor: string) {
    return { mode: 'key' as const, actor, csrfToken: csrfTokenFor(token), sessionId: row.id, idleExpiresAt: row.idle_expires_at.toISOString(), expiresAt: row.expires_at.toISOString() }
  }

  // Who is signed in (and the CSRF token for this page's calls): a page reload asks this instead of keeping anything.
  app.get('/api/session', { schema: { querystring: NoQuery, response: { 200: Me } } }, async (req) => {
    if (ring.open) return { mode: 'open', actor: 'anonymous', csrfToken: null }
    const token = req.cookies[CONSOLE_COOKIE]
    const identity = token === undefined ? undefined : await consoleService.identify(token)
    if (identity === undefined) throw invalidApiKey()
    return describe(token!, identity.row, identity.key.name)
  })

  // Sign-in: the key is checked in constant time against every configured key; only an admin key opens a session.
  app.post<{ Body: { key: string } }>('/api/session', { schema: { querystring: NoQuery, body: SignInBody, response: { 200: Me } } }, async (req: FastifyRequest<{ Body: { key: string } }>, reply: FastifyReply) => {
    if (!isSameOrigin(req)) throw csrfRefused('sign-in must come from the console\'s own origin')
    if (ring.open) return { mode: 'open', actor: 'anonymous', csrfToken: null }
    const wait = throttle.retryAfter(req.ip)
    if (wait > 0) {
      void reply.header('retry-after', String(wait))
      throw tooManyAttempts(wait)
    }
    const signedIn = await consoleService.signIn(req.body.key, { ip: req.ip, userAgent: req.headers['user-agent'] })
    if (signedIn === undefined) {
      throttle.failed(req.ip)
      req.log.warn({ ip: req.ip }, 'console sign-in with a wrong key')
      throw invalidApiKey()
    }
    throttle.succeeded(req.ip)
    req.sessionId = signedIn.row.id
    req.log.info({ actor: signedIn.actor, sessionId: signedIn.row.id }, 'console sign-in')
    void reply.header('set-cookie', fastifyCookie.serialize(CONSOLE_COOKIE, signedIn.token, {
      ...cookieOptions,
      maxAge: config.console.absoluteTimeout,
      expires: signedIn.row.expires_at,
    }))
    return describe(signedIn.token, signedIn.row, signedIn.actor)
  })

  // Sign-out ends the console session in the store, so the cookie is worthless even if it was copied.
  app.delete('/api/session', { schema: { querystring: NoQuery } }, async (req, reply) => {
    const token = req.cookies[CONSOLE_COOKIE]
    if (token !== undefined && token !== '') {
      checkCsrf(req, token)
      const identity = await consoleService.identify(token)
      if (identity !== undefined) {
        await consoleService.signOut(token, identity.key.name)
        req.sessionId = identity.row.id
        req.log.info({ actor: identity.key.name, sessionId: identity.row.id }, 'console sign-out')
      }
    }
    void reply.header('set-cookie', fastifyCookie.serialize(CONSOLE_COOKIE, '', { ...cookieOptions, maxAge: 0, expires: new Date(0) }))
    return reply.code(204).send()
  })
}
