// What the Fastify plugin and the Express middleware share: cookie → validated session (cached, revocation-aware), and login, rotate, touch, logout.
import { createHash } from 'node:crypto'
import { SessionServiceClient, type ClientOptions } from './index.js'
import { SessionServiceError, isSessionServiceError } from './errors.js'
import type { CreateSessionInput, ErrorBody, IssuedSession, Revocation, Session } from './types.js'
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

export interface SessionGuardOptions {
  // A ready client, or baseUrl (+ apiKey, clientOptions) to make one.
  client?: SessionServiceClient
  baseUrl?: string
  apiKey?: string
  clientOptions?: Omit<ClientOptions, 'baseUrl' | 'apiKey'>
  // The service's COOKIE_NAME; default "sid".
  cookieName?: string
  // How long a validated session is served from memory (never past its own deadlines); default 5000, 0 = no cache.
  cacheTtlMs?: number
  // Bound on cached sessions (least recently used go first); default 10,000.
  cacheMaxEntries?: number
  // Follow GET /v1/revocations so a revoked session leaves the cache within about a second; default true (with a cache).
  followRevocations?: boolean
  // The long-poll's wait (0–30 s); default 25.
  revocationWaitSeconds?: number
  // Validate with touch (slides the idle window, coalesced by the service); default true.
  touch?: boolean
  logger?: GuardLogger
}

export type Authentication =
  | { ok: true; session: Session; token: string; fromCache: boolean }
  | { ok: false; status: number; body: ErrorBody; headers: Record<string, string> }

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

export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  const text = Array.isArray(header) ? header.join('; ') : header
  if (text === undefined || text === '') return undefined
  for (const part of text.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    return value === '' ? undefined : value
  }
  return undefined
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

const noCookie: ErrorBody = { error: { code: 'session_invalid', message: 'no session cookie', details: [], reason: 'not_found' } }

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
    if (token === undefined) return { ok: false, status: 401, body: noCookie, headers: { 'cache-control': 'no-store' } }
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

  async rotate(token: string): Promise<IssuedSession> {
    const issued = await this.client.rotate(token)
    this.forget(issued.session.id)
    this.remember(issued.token, issued.session)
    return issued
  }

  async touch(token: string): Promise<Session> {
    const session = await this.client.touch(token)
    this.remember(token, session)
    return session
  }

  // Logout: revoke and forget; `setCookie` clears the browser's cookie.
  async logout(token: string | undefined, reason?: string): Promise<{ setCookie: string | undefined }> {
    if (token === undefined) return { setCookie: undefined }
    this.cache.delete(digest(token))
    const answer = await this.client.revoke(token, reason)
    this.cache.delete(digest(token))
    return answer
  }

  // The answer to send when a helper's call to the service failed: 401 with the reason, 503, or 500.
  denial(err: unknown): Extract<Authentication, { ok: false }> {
    if (!isSessionServiceError(err)) throw err
    if (err.code === 'session_invalid') return { ok: false, status: 401, body: err.toBody(), headers: { 'cache-control': 'no-store' } }
    if (err.status === 503 || err.status === 0) {
      this.log.warn({ err: describe(err) }, 'session service unavailable')
      return {
        ok: false,
        status: 503,
        body: { error: { code: 'unavailable', message: 'sessions cannot be checked right now; retry shortly', details: [] } },
        headers: { 'retry-after': String(err.retryAfter ?? 2), 'cache-control': 'no-store' },
      }
    }
    // A wrong API key, a 400 or a bug: the app's configuration, not the user, is at fault.
    this.log.error({ err: describe(err) }, 'session service refused the request')
    return { ok: false, status: 500, body: { error: { code: 'internal_error', message: 'internal error', details: [] } }, headers: {} }
  }

  private async validate(token: string, key: string): Promise<Authentication> {
    const startedSeq = this.seq
    const cacheable = this.cacheUsable()
    try {
      const session = await this.client.validate(token, { touch: this.touchOnValidate })
      if (cacheable && this.unchangedSince(session.id, startedSeq)) this.cache.set(key, session, Date.now())
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

  private unchangedSince(sessionId: string, startedSeq: number): boolean {
    if (this.flushedAt > startedSeq) return false
    return (this.evictions.get(sessionId)?.seq ?? 0) <= startedSeq
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
    this.flushedAt = ++this.seq
    this.counters.flushes++
  }
}

function describe(err: unknown): Record<string, unknown> {
  if (err instanceof SessionServiceError) return { code: err.code, status: err.status, message: err.message, attempts: err.attempts }
  return { message: err instanceof Error ? err.message : String(err) }
}
