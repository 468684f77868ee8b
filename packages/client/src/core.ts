// What the Fastify plugin and the Express middleware share: cookie → validated session (cached, revocation-aware), and login, rotate, touch, logout.
import { createHash } from 'node:crypto'
import { SessionServiceClient, type ClientOptions, type LocalRevocation } from './index.js'
import { SessionServiceError, isSessionServiceError } from './errors.js'
import type { CreateSessionInput, ErrorBody, InvalidReason, IssuedSession, Revocation, Session } from './types.js'
import { SessionCache } from './cache.js'
import { followRevocations, type Follower, type FollowerState } from './revocation-follower.js'

export const IDLE_EXPIRES_HEADER = 'x-session-idle-expires-at'
export const EXPIRES_HEADER = 'x-session-expires-at'

// pino's and Fastify's loggers fit.
export interface GuardLogger {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

const silent: GuardLogger = { debug() {}, info() {}, warn() {}, error() {} }

// Warnings and errors to the console, so that a misconfiguration is never silent (the Express middleware's default).
export const consoleLogger: GuardLogger = {
  debug() {},
  info() {},
  warn: (obj, msg) => console.warn(`session-service: ${msg}`, obj),
  error: (obj, msg) => console.error(`session-service: ${msg}`, obj),
}

export interface SessionGuardOptions {
  // A ready client, or baseUrl (+ apiKey, clientOptions) to make one.
  client?: SessionServiceClient | undefined
  baseUrl?: string | undefined
  apiKey?: string | undefined
  clientOptions?: Omit<ClientOptions, 'baseUrl' | 'apiKey'> | undefined
  // The service's COOKIE_NAME; default "sid".
  cookieName?: string | undefined
  // How long a validated session is served from memory (never past its own deadlines); default 5000, 0 = no cache.
  cacheTtlMs?: number | undefined
  // Bound on cached sessions (least recently used go first); default 10,000.
  cacheMaxEntries?: number | undefined
  // Follow GET /v1/revocations so a revoked session leaves the cache within about a second; default true (with a cache).
  followRevocations?: boolean | undefined
  // The long-poll's wait (0–30 s); default 25.
  revocationWaitSeconds?: number | undefined
  // Validate with touch (slides the idle window, coalesced by the service); default true.
  touch?: boolean | undefined
  logger?: GuardLogger | undefined
}

// Why a request has no session, and the answer the middleware sends for it: 401 session_invalid with the reason, 503
// unavailable (the service cannot be reached), 500 service_misconfigured (the service refused the app's API key) or 500
// internal_error.
export interface Denial {
  ok: false
  status: number
  code: string
  // session_invalid only: not_found (also: no cookie), expired, idle_timeout or revoked.
  reason: InvalidReason | undefined
  body: ErrorBody
  headers: Record<string, string>
}

export type Authentication = { ok: true; session: Session; token: string; fromCache: boolean } | Denial

export interface GuardStats {
  hits: number
  misses: number
  entries: number
  feed: FollowerState | 'off'
  cursor: string | undefined
  revocationsSeen: number
  flushes: number
}

// Entries older than this leave the eviction log; no validation lasts that long with the client's timeouts.
const EVICTION_LOG_MS = 60_000
const EVICTION_LOG_MAX = 100_000

// A name sent more than once is no session (a sibling subdomain can plant a second one: cookie tossing), unless it has the
// __Host- prefix, which only this host can set; then the first wins.
export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  const text = Array.isArray(header) ? header.join('; ') : header
  if (text === undefined || text === '') return undefined
  let found: string | undefined
  let seen = 0
  for (const part of text.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue
    seen += 1
    if (seen > 1) {
      if (name.startsWith('__Host-')) break
      return undefined
    }
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    found = value === '' ? undefined : value
  }
  return found
}

export function expiryHeaders(session: Session): Record<string, string> {
  return { [IDLE_EXPIRES_HEADER]: session.idleExpiresAt, [EXPIRES_HEADER]: session.expiresAt }
}

// Text the contract accepts for ip and userAgent (no control characters, bounded), or nothing.
export function cleanText(value: string | undefined, max: number): string | undefined {
  if (value === undefined) return undefined
  // eslint-disable-next-line no-control-regex
  const text = value.replace(/[\u0000-\u001F\u007F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '').slice(0, max)
  return text === '' ? undefined : text
}

const digest = (token: string) => createHash('sha256').update(token).digest('base64url')

function denialOf(status: number, body: ErrorBody, headers: Record<string, string>): Denial {
  return { ok: false, status, code: body.error.code, reason: body.error.reason, body, headers }
}

const NO_STORE = { 'cache-control': 'no-store' }

// The error a helper (touch, rotate, revokeOtherSessions) throws for a request without a session cookie: fail() answers it
// with 401 not_found.
export function noCookieError(operation: string): SessionServiceError {
  return new SessionServiceError({ status: 401, code: 'session_invalid', reason: 'not_found', message: 'no session cookie', operation, attempts: 0 })
}

export class SessionGuard {
  readonly client: SessionServiceClient
  readonly cookieName: string
  private readonly cache: SessionCache
  private readonly touchOnValidate: boolean
  private readonly follow: boolean
  private readonly waitSeconds: number
  private readonly log: GuardLogger
  private readonly inflight = new Map<string, Promise<Authentication>>()
  private follower: Follower | undefined
  private closed = false
  // The feed has a position: cached entries are then kept up to date by it.
  private positioned = false
  // Orders evictions and flushes against validations in flight, so an answer that left the service before a revocation
  // arrived is not cached after it.
  private seq = 0
  private flushedAt = 0
  private readonly evictions = new Map<string, { seq: number; at: number }>()
  // The same for all of a user's sessions but one (the app revoked them itself, e.g. on a password change).
  private readonly userEvictions = new Map<string, { seq: number; at: number; except: string | undefined }>()
  private readonly unsubscribe: () => void
  private readonly counters = { hits: 0, misses: 0, revocationsSeen: 0, flushes: 0 }

  constructor(options: SessionGuardOptions) {
    if (options.client === undefined && options.baseUrl === undefined) throw new Error('SessionGuard needs a client or a baseUrl')
    this.client = options.client ?? new SessionServiceClient({ ...options.clientOptions, baseUrl: options.baseUrl!, apiKey: options.apiKey })
    this.cookieName = options.cookieName ?? 'sid'
    const ttlMs = options.cacheTtlMs ?? 5000
    this.cache = new SessionCache(ttlMs, options.cacheMaxEntries ?? 10_000)
    this.follow = ttlMs > 0 && (options.followRevocations ?? true)
    this.waitSeconds = options.revocationWaitSeconds ?? 25
    this.touchOnValidate = options.touch ?? true
    this.log = options.logger ?? silent
    // What the app revokes through this client leaves the cache before the call returns, not when the feed reports it.
    this.unsubscribe = this.client.onRevoke((revocation) => this.revokedHere(revocation))
  }

  // Starts following the revocation feed (idempotent); until the feed has a position, every request goes to the service.
  start(): void {
    if (!this.follow || this.follower !== undefined || this.closed) return
    this.follower = followRevocations(this.client, { waitSeconds: this.waitSeconds }, {
      onPosition: (cursor) => {
        this.flush()
        this.positioned = true
        this.log.info({ cursor }, 'session cache on: following the revocation feed')
      },
      onRevocations: (revocations) => this.revoked(revocations),
      onCursorExpired: () => {
        this.positioned = false
        this.flush()
        this.log.warn({}, 'revocation feed cursor expired: session cache flushed, starting again')
      },
      onError: (err, delayMs) => {
        if (isSessionServiceError(err) && err.status === 404) {
          this.log.error({ err: describe(err), delayMs }, 'the session service has no GET /v1/revocations (an older version?): sessions are not cached; set followRevocations: false to cache by the TTL alone')
        } else {
          this.log.warn({ err: describe(err), delayMs }, 'revocation feed failed; retrying (cached sessions still end by their TTL)')
        }
      },
    })
  }

  async close(): Promise<void> {
    this.closed = true
    this.unsubscribe()
    await this.follower?.stop()
    this.flush()
  }

  stats(): GuardStats {
    return {
      ...this.counters,
      entries: this.cache.size,
      feed: this.follower?.state ?? 'off',
      cursor: this.follower?.cursor,
    }
  }

  tokenFrom(cookieHeader: string | string[] | undefined): string | undefined {
    return readCookie(cookieHeader, this.cookieName)
  }

  async authenticate(cookieHeader: string | string[] | undefined): Promise<Authentication> {
    const token = this.tokenFrom(cookieHeader)
    if (token === undefined) return this.denial(noCookieError('authenticate'))
    return this.check(token)
  }

  async check(token: string): Promise<Authentication> {
    this.start()
    const key = digest(token)
    if (this.cacheUsable()) {
      const session = this.cache.get(key, Date.now())
      if (session !== undefined) {
        this.counters.hits++
        return { ok: true, session, token, fromCache: true }
      }
    }
    this.counters.misses++
    const running = this.inflight.get(key)
    if (running !== undefined) return running
    const validation = this.validate(token, key).finally(() => this.inflight.delete(key))
    this.inflight.set(key, validation)
    return validation
  }

  // POST /v1/sessions for a user who just proved who they are; the caller sends `setCookie`.
  async login(input: CreateSessionInput): Promise<IssuedSession> {
    const issued = await this.client.create(input)
    this.remember(issued.token, issued.session)
    return issued
  }

  async rotate(token: string | undefined): Promise<IssuedSession> {
    if (token === undefined) throw noCookieError('rotate')
    const issued = await this.client.rotate(token)
    this.forget(issued.session.id)
    this.remember(issued.token, issued.session)
    return issued
  }

  async touch(token: string | undefined): Promise<Session> {
    if (token === undefined) throw noCookieError('touch')
    const session = await this.client.touch(token)
    this.remember(token, session)
    return session
  }

  // The valid session of a token, or the SessionServiceError a helper throws (fail() answers it as the guard would).
  async sessionFor(token: string | undefined, operation: string): Promise<Session> {
    if (token === undefined) throw noCookieError(operation)
    const result = await this.check(token)
    if (result.ok) return result.session
    const { code, message, details, reason, revokeReason } = result.body.error
    throw new SessionServiceError({ status: result.status, code, message, details, reason, revokeReason, operation, attempts: 0 })
  }

  // A password change: revokes every other session of the user (reason password_change by default) and forgets them here at
  // once; answers how many were revoked.
  async revokeOtherSessions(session: Session, reason = 'password_change'): Promise<number> {
    return this.client.revokeUserSessions(session.userId, { except: session.id, reason })
  }

  // Logout: revoke and forget; `setCookie` clears the browser's cookie.
  async logout(token: string | undefined, reason?: string): Promise<{ setCookie: string | undefined }> {
    if (token === undefined) return { setCookie: undefined }
    this.cache.delete(digest(token))
    const answer = await this.client.revoke(token, reason)
    this.cache.delete(digest(token))
    return answer
  }

  // The answer to send when a helper's call to the service failed: 401 with the reason, 503, or 500 (logged).
  denial(err: unknown): Denial {
    if (!isSessionServiceError(err)) {
      this.log.error({ err: describe(err) }, 'a session helper failed')
      return denialOf(500, { error: { code: 'internal_error', message: 'internal error', details: [] } }, {})
    }
    if (err.code === 'session_invalid') return denialOf(401, err.toBody(), { ...NO_STORE })
    if (err.status === 503 || err.status === 0) {
      this.log.warn({ err: describe(err) }, 'session service unavailable')
      return denialOf(503, { error: { code: 'unavailable', message: 'sessions cannot be checked right now; retry shortly', details: [] } }, { 'retry-after': String(err.retryAfter ?? 2), ...NO_STORE })
    }
    if (err.code === 'invalid_api_key' || err.code === 'forbidden') {
      // Every request fails the same way until the app's settings are fixed: say so in the log and in the answer.
      this.log.error({ err: describe(err) }, `the session service refused this app's API key (${err.code}): check the apiKey option (the service's API_KEYS)`)
      return denialOf(500, { error: { code: 'service_misconfigured', message: "the app's session service settings are wrong; see the app's log", details: [] } }, { ...NO_STORE })
    }
    // A 400 or a bug: the app, not the user, is at fault.
    this.log.error({ err: describe(err) }, 'session service refused the request')
    return denialOf(500, { error: { code: 'internal_error', message: 'internal error', details: [] } }, {})
  }

  private async validate(token: string, key: string): Promise<Authentication> {
    const startedSeq = this.seq
    const cacheable = this.cacheUsable()
    try {
      const session = await this.client.validate(token, { touch: this.touchOnValidate })
      if (cacheable && this.unchangedSince(session, startedSeq)) this.cache.set(key, session, Date.now())
      return { ok: true, session, token, fromCache: false }
    } catch (err) {
      this.cache.delete(key)
      return this.denial(err)
    }
  }

  private cacheUsable(): boolean {
    return this.cache.ttlMs > 0 && !this.closed && (!this.follow || this.positioned)
  }

  private remember(token: string, session: Session): void {
    if (this.cacheUsable()) this.cache.set(digest(token), session, Date.now())
  }

  private unchangedSince(session: Session, startedSeq: number): boolean {
    if (this.flushedAt > startedSeq) return false
    const user = this.userEvictions.get(session.userId)
    if (user !== undefined && user.seq > startedSeq && user.except !== session.id) return false
    return (this.evictions.get(session.id)?.seq ?? 0) <= startedSeq
  }

  private revokedHere(revocation: LocalRevocation): void {
    if (revocation.kind === 'matching') return this.flush()
    if (revocation.kind === 'session') return this.forget(revocation.sessionId)
    if (revocation.kind === 'token') {
      const key = digest(revocation.token)
      const session = this.cache.peek(key)
      this.cache.delete(key)
      if (session !== undefined) this.forget(session.id)
      return
    }
    const { userId, except } = revocation
    for (const sessionId of this.cache.sessionIdsOf(userId)) if (sessionId !== except) this.forget(sessionId)
    const now = Date.now()
    this.userEvictions.delete(userId)
    this.userEvictions.set(userId, { seq: ++this.seq, at: now, except })
    for (const [id, entry] of this.userEvictions) {
      if (entry.at > now - EVICTION_LOG_MS) break
      this.userEvictions.delete(id)
    }
    if (this.inflight.size === 0) this.userEvictions.clear()
    else if (this.userEvictions.size > EVICTION_LOG_MAX) this.flush()
  }

  private forget(sessionId: string): void {
    this.cache.evictSession(sessionId)
    const now = Date.now()
    this.evictions.delete(sessionId)
    this.evictions.set(sessionId, { seq: ++this.seq, at: now })
    // The log is in time order: drop what no validation in flight can still need.
    for (const [id, entry] of this.evictions) {
      if (entry.at > now - EVICTION_LOG_MS) break
      this.evictions.delete(id)
    }
    if (this.inflight.size === 0) this.evictions.clear()
    else if (this.evictions.size > EVICTION_LOG_MAX) this.flush()
  }

  private revoked(revocations: Revocation[]): void {
    this.counters.revocationsSeen += revocations.length
    for (const revocation of revocations) this.forget(revocation.sessionId)
    this.log.debug({ count: revocations.length, sessionIds: revocations.map((r) => r.sessionId).slice(0, 20) }, 'revocations applied to the session cache')
  }

  private flush(): void {
    this.cache.flush()
    this.evictions.clear()
    this.userEvictions.clear()
    this.flushedAt = ++this.seq
    this.counters.flushes++
  }
}

function describe(err: unknown): Record<string, unknown> {
  if (err instanceof SessionServiceError) return { code: err.code, status: err.status, message: err.message, attempts: err.attempts }
  return { message: err instanceof Error ? err.message : String(err) }
}
