// A typed client for the session service: every route of the contract over Node's fetch, with timeouts, safe retries and keep-alive.
import { backoffDelayMs } from './backoff.js'
import { SessionServiceError, parseRetryAfter, type ErrorCode, type SessionServiceErrorInit } from './errors.js'
import type {
  AdminEventsQuery, AdminSessionsQuery, CreateSessionInput, ErrorBody, EventPage, HealthStatus, IssuedSession, MassRevokeQuery,
  PruneResult, RevocationPage, RevocationsQuery, RevokeAllQuery, RevokedCount, Session, SessionData, SessionEnvelope,
  SessionList, SessionPage, SessionStatus, Stats, SweepStep, UserSessionsQuery,
} from './types.js'

export * from './types.js'
export { SessionServiceError, isSessionInvalid, isSessionServiceError, type ClientErrorCode, type ErrorCode, type SessionServiceErrorInit } from './errors.js'

export interface RetryInfo {
  operation: string
  // The attempt that failed (1 = the first request).
  attempt: number
  delayMs: number
  error: SessionServiceError
}

export interface ClientOptions {
  // e.g. http://127.0.0.1:8080 (a path prefix is kept).
  baseUrl: string
  // Sent as Authorization: Bearer …; leave out only for a keyless service on loopback.
  apiKey?: string | undefined
  // Per request (each attempt); default 5000. The revocation long-poll gets wait + 10 s on top.
  timeoutMs?: number | undefined
  // Retries after the first attempt, for the cases that are safe to repeat; default 2, 0 = never.
  retries?: number | undefined
  // Exponential backoff with jitter: about base · 2^(attempt-1), at most maxDelayMs (which also caps a Retry-After).
  retryBaseDelayMs?: number | undefined
  retryMaxDelayMs?: number | undefined
  // Called before each retry, e.g. to log it.
  onRetry?: ((info: RetryInfo) => void) | undefined
  // Defaults to the global fetch, whose undici pool keeps connections alive between requests.
  fetch?: typeof fetch | undefined
  // Passed through to fetch, e.g. an undici Agent with other keep-alive settings.
  dispatcher?: unknown
  userAgent?: string | undefined
}

export interface CallOptions {
  signal?: AbortSignal | undefined
  timeoutMs?: number | undefined
  // Overrides ClientOptions.retries for this call.
  retries?: number | undefined
}

// What this client revoked, told to its listeners as soon as the service confirmed it (see onRevoke).
export type LocalRevocation =
  | { kind: 'token'; token: string }
  | { kind: 'session'; sessionId: string }
  | { kind: 'user'; userId: string; except: string | undefined }
  | { kind: 'matching' }

export interface AuthResult {
  session: Session
  sessionId: string
  userId: string
}

// How an operation may be repeated after a failure:
// - "idempotent": running it twice changes nothing a caller could mind (reads, validate, touch, revoke, deletes, a patch
//   without If-Match), so 503 `unavailable` and any connection failure (refused, unreachable, reset) are retried;
// - "once": it may have happened even though no answer came (create, rotate, a conditional patch), so only a connection
//   that could not be opened at all (refused, unreachable, no DNS answer, connect timeout) is retried: nothing was sent.
//   A 503 is not retried: the database may have committed before the connection to it broke.
// A timeout is never retried: the request may still be running, and a slow service needs less load, not more.
type Repeat = 'idempotent' | 'once'

interface RequestSpec {
  operation: string
  repeat: Repeat
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  path: string
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  headers?: Record<string, string>
  // What a success answers with.
  expect: 'json' | 'empty' | 'text'
  okStatus?: number[]
  timeoutMs?: number | undefined
}

interface Answer<T> {
  status: number
  headers: Headers
  body: T
}

// Codes of a connection that never opened: nothing of the request was sent.
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT'])

function causeCode(err: unknown): string | undefined {
  let node: unknown = err
  for (let depth = 0; depth < 5 && node !== null && typeof node === 'object'; depth++) {
    const code = (node as { code?: unknown }).code
    if (typeof code === 'string') return code
    const errors = (node as { errors?: unknown }).errors
    if (Array.isArray(errors) && errors.length > 0) {
      node = errors[0]
      continue
    }
    node = (node as { cause?: unknown }).cause
  }
  return undefined
}

// How long a sweep step may take before the client gives up on its answer, and how long a caller waits for another
// sweep (one at a time in the service) to finish before giving up with its sweep_running error.
const SWEEP_TIMEOUT_MS = 60_000
const SWEEP_WAIT_MS = 120_000

function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.name === 'TimeoutError'
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve, reject) => {
  if (signal?.aborted) return reject(signal.reason)
  const timer = setTimeout(() => {
    signal?.removeEventListener('abort', onAbort)
    resolve()
  }, ms)
  const onAbort = () => {
    clearTimeout(timer)
    reject(signal!.reason)
  }
  signal?.addEventListener('abort', onAbort, { once: true })
})

function queryString(query: Record<string, string | number | boolean | undefined> | undefined): string {
  if (query === undefined) return ''
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
  const text = params.toString()
  return text === '' ? '' : `?${text}`
}

function isErrorBody(value: unknown): value is ErrorBody {
  const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error
  return typeof error === 'object' && error !== null && typeof error.code === 'string' && typeof error.message === 'string'
}

export class SessionServiceClient {
  private readonly base: string
  private readonly fetchImpl: typeof fetch
  private readonly timeoutMs: number
  private readonly retries: number
  private readonly baseDelayMs: number
  private readonly maxDelayMs: number
  private readonly defaultHeaders: Record<string, string>
  private readonly revokeListeners = new Set<(revocation: LocalRevocation) => void>()

  constructor(private readonly options: ClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '')
    this.fetchImpl = options.fetch ?? globalThis.fetch
    this.timeoutMs = options.timeoutMs ?? 5000
    this.retries = options.retries ?? 2
    this.baseDelayMs = options.retryBaseDelayMs ?? 100
    this.maxDelayMs = options.retryMaxDelayMs ?? 2000
    this.defaultHeaders = {
      accept: 'application/json',
      ...(options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }),
      ...(options.userAgent === undefined ? {} : { 'user-agent': options.userAgent }),
    }
  }

  // Calls `listener` after each revocation this client made succeeded (revoke, revokeById, revokeUserSessions, rotate's old
  // token, revokeMatching), e.g. so a cache in this process forgets at once; returns the function that unsubscribes.
  onRevoke(listener: (revocation: LocalRevocation) => void): () => void {
    this.revokeListeners.add(listener)
    return () => this.revokeListeners.delete(listener)
  }

  private revoked(revocation: LocalRevocation): void {
    for (const listener of this.revokeListeners) listener(revocation)
  }

  // --- one session, by token -------------------------------------------------------------------------------------

  // POST /v1/sessions → 201. Not retried once it may have reached the service.
  async create(input: CreateSessionInput, call?: CallOptions): Promise<IssuedSession> {
    return (await this.request<IssuedSession>({ operation: 'create', repeat: 'once', method: 'POST', path: '/v1/sessions', body: input, expect: 'json', okStatus: [201] }, call)).body
  }

  // POST /v1/sessions/validate; throws SessionServiceError (code session_invalid, with reason) when the token is not valid.
  async validate(token: string, options: { touch?: boolean | undefined } & CallOptions = {}): Promise<Session> {
    const { touch, ...call } = options
    const body = touch === undefined ? { token } : { token, touch }
    return (await this.request<SessionEnvelope>({ operation: 'validate', repeat: 'idempotent', method: 'POST', path: '/v1/sessions/validate', body, expect: 'json' }, call)).body.session
  }

  // POST /v1/sessions/touch: a keep-alive that always records activity.
  async touch(token: string, call?: CallOptions): Promise<Session> {
    return (await this.request<SessionEnvelope>({ operation: 'touch', repeat: 'idempotent', method: 'POST', path: '/v1/sessions/touch', body: { token }, expect: 'json' }, call)).body.session
  }

  // POST /v1/sessions/rotate: a new token for the same session. Not retried once it may have reached the service.
  async rotate(token: string, call?: CallOptions): Promise<IssuedSession> {
    const issued = (await this.request<IssuedSession>({ operation: 'rotate', repeat: 'once', method: 'POST', path: '/v1/sessions/rotate', body: { token }, expect: 'json' }, call)).body
    this.revoked({ kind: 'token', token })
    return issued
  }

  // POST /v1/sessions/revoke → 204 (idempotent); `setCookie` is the service's clearing Set-Cookie, to pass to the browser.
  async revoke(token: string, reason?: string, call?: CallOptions): Promise<{ setCookie: string | undefined }> {
    const body = reason === undefined ? { token } : { token, reason }
    const answer = await this.request<null>({ operation: 'revoke', repeat: 'idempotent', method: 'POST', path: '/v1/sessions/revoke', body, expect: 'empty', okStatus: [204] }, call)
    this.revoked({ kind: 'token', token })
    return { setCookie: answer.headers.getSetCookie()[0] }
  }

  // GET /v1/auth with X-Session-Token: what a load balancer's auth_request sees.
  async auth(token: string, call?: CallOptions): Promise<AuthResult> {
    const answer = await this.request<SessionEnvelope>({ operation: 'auth', repeat: 'idempotent', method: 'GET', path: '/v1/auth', headers: { 'x-session-token': token }, expect: 'json' }, call)
    const header = (name: string) => decodeURIComponent(answer.headers.get(name) ?? '')
    return { session: answer.body.session, sessionId: header('x-session-id'), userId: header('x-user-id') }
  }

  // --- one session, by id ----------------------------------------------------------------------------------------

  // GET /v1/sessions/{id}: the session in any state; 404 not_found when unknown.
  async get(id: string, call?: CallOptions): Promise<SessionStatus> {
    return (await this.request<SessionStatus>({ operation: 'get', repeat: 'idempotent', method: 'GET', path: `/v1/sessions/${encodeURIComponent(id)}`, expect: 'json' }, call)).body
  }

  // PATCH /v1/sessions/{id}: `data` as a JSON Merge Patch; with ifMatch, 412 version_conflict (currentVersion) on a mismatch.
  async patch(id: string, data: SessionData, options: { ifMatch?: number | undefined } & CallOptions = {}): Promise<Session> {
    const { ifMatch, ...call } = options
    const conditional = ifMatch !== undefined
    return (await this.request<SessionEnvelope>({
      operation: 'patch',
      // A repeated merge patch gives the same data; a repeated conditional one would answer 412 for a patch that worked.
      repeat: conditional ? 'once' : 'idempotent',
      method: 'PATCH',
      path: `/v1/sessions/${encodeURIComponent(id)}`,
      body: { data },
      headers: conditional ? { 'if-match': `"${ifMatch}"` } : {},
      expect: 'json',
    }, call)).body.session
  }

  // DELETE /v1/sessions/{id} → 204; 404 not_found for an unknown id.
  async revokeById(id: string, reason?: string, call?: CallOptions): Promise<void> {
    await this.request<null>({ operation: 'revokeById', repeat: 'idempotent', method: 'DELETE', path: `/v1/sessions/${encodeURIComponent(id)}`, query: { reason }, expect: 'empty', okStatus: [204] }, call)
    this.revoked({ kind: 'session', sessionId: id })
  }

  // --- a user's sessions -----------------------------------------------------------------------------------------

  // GET /v1/users/{userId}/sessions: every active session, newest first, following nextCursor page by page.
  async listUserSessions(userId: string, call?: CallOptions): Promise<Session[]> {
    const sessions: Session[] = []
    let cursor: string | undefined
    do {
      const page = await this.listUserSessionsPage(userId, { cursor }, call)
      sessions.push(...page.sessions)
      cursor = page.nextCursor ?? undefined
    } while (cursor !== undefined)
    return sessions
  }

  // One page of GET /v1/users/{userId}/sessions (limit default 100, at most 1000; a page may be shorter when its data is large).
  async listUserSessionsPage(userId: string, query: UserSessionsQuery = {}, call?: CallOptions): Promise<SessionList> {
    return (await this.request<SessionList>({ operation: 'listUserSessions', repeat: 'idempotent', method: 'GET', path: `/v1/users/${encodeURIComponent(userId)}/sessions`, query: { ...query }, expect: 'json' }, call)).body
  }

  // DELETE /v1/users/{userId}/sessions?except=&reason= → how many were revoked (e.g. on a password change).
  async revokeUserSessions(userId: string, query: RevokeAllQuery = {}, call?: CallOptions): Promise<number> {
    const revoked = (await this.request<RevokedCount>({ operation: 'revokeUserSessions', repeat: 'idempotent', method: 'DELETE', path: `/v1/users/${encodeURIComponent(userId)}/sessions`, query: { ...query }, expect: 'json' }, call)).body.revoked
    this.revoked({ kind: 'user', userId, except: query.except })
    return revoked
  }

  // --- the revocation feed -----------------------------------------------------------------------------------------

  // GET /v1/revocations: without `since`, the current position; with it, what came after (waiting up to `wait` seconds).
  // A 410 cursor_expired means: flush whatever this feed kept up to date, and start again without `since`.
  async revocations(query: RevocationsQuery = {}, call?: CallOptions): Promise<RevocationPage> {
    const waitMs = query.since === undefined ? 0 : (query.wait ?? 25) * 1000
    const timeoutMs = Math.max(call?.timeoutMs ?? this.timeoutMs, waitMs + 10_000)
    return (await this.request<RevocationPage>({ operation: 'revocations', repeat: 'idempotent', method: 'GET', path: '/v1/revocations', query: { ...query }, expect: 'json', timeoutMs }, call)).body
  }

  // --- operators (scope admin) -------------------------------------------------------------------------------------

  async listSessions(query: AdminSessionsQuery = {}, call?: CallOptions): Promise<SessionPage> {
    return (await this.request<SessionPage>({ operation: 'listSessions', repeat: 'idempotent', method: 'GET', path: '/v1/admin/sessions', query: { ...query }, expect: 'json' }, call)).body
  }

  // Every page of GET /v1/admin/sessions, following nextCursor.
  async *allSessions(query: Omit<AdminSessionsQuery, 'cursor'> = {}, call?: CallOptions): AsyncGenerator<SessionStatus> {
    let cursor: string | undefined
    do {
      const page = await this.listSessions({ ...query, cursor }, call)
      yield* page.sessions
      cursor = page.nextCursor ?? undefined
    } while (cursor !== undefined)
  }

  async listEvents(query: AdminEventsQuery = {}, call?: CallOptions): Promise<EventPage> {
    return (await this.request<EventPage>({ operation: 'listEvents', repeat: 'idempotent', method: 'GET', path: '/v1/admin/events', query: { ...query }, expect: 'json' }, call)).body
  }

  async stats(call?: CallOptions): Promise<Stats> {
    return (await this.request<Stats>({ operation: 'stats', repeat: 'idempotent', method: 'GET', path: '/v1/admin/stats', expect: 'json' }, call)).body
  }

  // DELETE /v1/admin/sessions: mass revocation; needs a filter or all: true. Calls step after step, each continuing from
  // the last one's cursor, until the sweep is done; answers how many it revoked in all.
  async revokeMatching(query: Omit<MassRevokeQuery, 'cursor'>, call?: CallOptions): Promise<number> {
    let revoked = 0
    let cursor: string | undefined
    for (;;) {
      const step = await this.revokeMatchingStep({ ...query, cursor }, call)
      revoked += step.revoked
      if (step.done) return revoked
      cursor = step.nextCursor ?? undefined
    }
  }

  // One step of a mass revocation: the service sweeps for a bounded time and answers what it did and whether it is done.
  // Safe to retry: the service answers within the step's own bound (never 503 while it works), and a call that meets a
  // sweep still running anywhere (such as this call's own earlier attempt) is refused with 409 sweep_running, on which this
  // waits and calls again rather than sweeping beside it.
  async revokeMatchingStep(query: MassRevokeQuery, call?: CallOptions): Promise<SweepStep> {
    const step = await this.sweep(() => this.request<SweepStep>({ operation: 'revokeMatching', repeat: 'idempotent', method: 'DELETE', path: '/v1/admin/sessions', query: { ...query }, expect: 'json', timeoutMs: this.sweepTimeoutMs(call) }, call), call)
    this.revoked({ kind: 'matching' })
    return step
  }

  // POST /v1/admin/prune, step after step until nothing is due (or another node is pruning: skipped).
  async prune(call?: CallOptions): Promise<PruneResult> {
    const total: PruneResult = { deleted: 0, deletedEvents: 0, endedRecorded: 0, skipped: false, done: false }
    for (let first = true; ; first = false) {
      const step = (await this.request<PruneResult>({ operation: 'prune', repeat: 'idempotent', method: 'POST', path: '/v1/admin/prune', expect: 'json', timeoutMs: this.sweepTimeoutMs(call) }, call)).body
      total.deleted += step.deleted
      total.deletedEvents += step.deletedEvents
      total.endedRecorded += step.endedRecorded
      total.skipped = step.skipped && first
      total.done = step.done
      if (step.done || step.skipped) return total
    }
  }

  // A sweep step may run for the service's budget (its statement timeout) and one batch more: more than a usual call.
  private sweepTimeoutMs(call: CallOptions | undefined): number {
    return call?.timeoutMs ?? Math.max(this.timeoutMs, SWEEP_TIMEOUT_MS)
  }

  private async sweep<T>(step: () => Promise<Answer<T>>, call: CallOptions | undefined): Promise<T> {
    const waitUntil = performance.now() + SWEEP_WAIT_MS
    for (let attempt = 1; ; attempt++) {
      try {
        return (await step()).body
      } catch (err) {
        if (!(err instanceof SessionServiceError) || err.code !== 'sweep_running' || performance.now() >= waitUntil) throw err
        const delayMs = backoffDelayMs(attempt, this.baseDelayMs * 10, this.maxDelayMs)
        this.options.onRetry?.({ operation: err.operation, attempt, delayMs, error: err })
        await sleep(delayMs, call?.signal)
      }
    }
  }

  // --- operations (no key) -------------------------------------------------------------------------------------------

  async health(call?: CallOptions): Promise<HealthStatus> {
    return (await this.request<HealthStatus>({ operation: 'health', repeat: 'idempotent', method: 'GET', path: '/healthz', expect: 'json' }, call)).body
  }

  // GET /readyz: 200 ready, or 503 with the reason in `status` (answered, not thrown, and not retried).
  async ready(call?: CallOptions): Promise<HealthStatus & { ready: boolean }> {
    const answer = await this.request<HealthStatus>({ operation: 'ready', repeat: 'once', method: 'GET', path: '/readyz', expect: 'json', okStatus: [200, 503] }, call)
    return { ready: answer.status === 200, status: answer.body.status }
  }

  async metrics(call?: CallOptions): Promise<string> {
    return (await this.request<string>({ operation: 'metrics', repeat: 'idempotent', method: 'GET', path: '/metrics', expect: 'text' }, call)).body
  }

  async openapi(call?: CallOptions): Promise<string> {
    return (await this.request<string>({ operation: 'openapi', repeat: 'idempotent', method: 'GET', path: '/openapi.yaml', expect: 'text' }, call)).body
  }

  // --- transport -----------------------------------------------------------------------------------------------------

  private async request<T>(spec: RequestSpec, call: CallOptions = {}): Promise<Answer<T>> {
    const retries = call.retries ?? this.retries
    const url = `${this.base}${spec.path}${queryString(spec.query)}`
    const headers: Record<string, string> = { ...this.defaultHeaders, ...spec.headers }
    if (spec.body !== undefined) headers['content-type'] = 'application/json'
    const body = spec.body === undefined ? undefined : JSON.stringify(spec.body)
    const timeoutMs = spec.timeoutMs ?? call.timeoutMs ?? this.timeoutMs

    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt<T>(spec, url, headers, body, timeoutMs, call.signal, attempt)
      if (!(outcome instanceof SessionServiceError)) return outcome
      const retryable = outcome.status === 503 ? spec.repeat === 'idempotent' : this.retryableFailure(spec.repeat, outcome)
      if (!retryable || attempt > retries) throw outcome
      let delayMs = backoffDelayMs(attempt, this.baseDelayMs, this.maxDelayMs)
      if (outcome.retryAfter !== undefined) delayMs = Math.max(delayMs, Math.min(this.maxDelayMs, outcome.retryAfter * 1000))
      this.options.onRetry?.({ operation: spec.operation, attempt, delayMs, error: outcome })
      await sleep(delayMs, call.signal)
    }
  }

  private retryableFailure(repeat: Repeat, error: SessionServiceError): boolean {
    if (error.code !== 'connection_failed') return false
    const code = causeCode(error.cause)
    if (code !== undefined && NOT_SENT.has(code)) return true
    return repeat === 'idempotent'
  }

  // One request: the answer, or the failure as a SessionServiceError (to retry or throw). A caller's abort is thrown as is.
  private async attempt<T>(spec: RequestSpec, url: string, headers: Record<string, string>, body: string | undefined, timeoutMs: number, callerSignal: AbortSignal | undefined, attempt: number): Promise<Answer<T> | SessionServiceError> {
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = callerSignal === undefined ? timeout : AbortSignal.any([callerSignal, timeout])
    const failure = (status: number, code: ErrorCode, message: string, extra: Partial<SessionServiceErrorInit> = {}) =>
      new SessionServiceError({ ...extra, status, code, message, operation: spec.operation, attempts: attempt })
    let res: Response
    let text: string
    try {
      res = await this.fetchImpl(url, { method: spec.method, headers, body, signal, ...(this.options.dispatcher === undefined ? {} : { dispatcher: this.options.dispatcher }) } as RequestInit)
      text = await res.text()
    } catch (err) {
      if (callerSignal?.aborted) throw callerSignal.reason
      if (isTimeout(err)) return failure(0, 'timeout', `${spec.operation}: no answer within ${timeoutMs} ms`, { cause: err })
      const code = causeCode(err)
      return failure(0, 'connection_failed', `${spec.operation}: ${code ?? (err as Error).message}`, { cause: err })
    }

    const ok = (spec.okStatus ?? [200]).includes(res.status)
    let json: unknown
    if (spec.expect !== 'text' || !ok) {
      try {
        json = text === '' ? null : JSON.parse(text)
      } catch {
        json = undefined
      }
    }
    if (ok) {
      if (spec.expect === 'text') return { status: res.status, headers: res.headers, body: text as T }
      if (spec.expect === 'json' && (json === undefined || json === null)) return failure(res.status, 'unexpected_response', `${spec.operation}: expected JSON, got ${text.slice(0, 80)}`)
      return { status: res.status, headers: res.headers, body: (spec.expect === 'empty' ? null : json) as T }
    }
    const retryAfter = parseRetryAfter(res.headers.get('retry-after'))
    if (!isErrorBody(json)) {
      return failure(res.status, res.status === 503 ? 'unavailable' : 'unexpected_response', `${spec.operation}: HTTP ${res.status} ${text.slice(0, 80)}`, { retryAfter })
    }
    const { code, message, details, reason, revokeReason, currentVersion } = json.error
    return failure(res.status, code, message, { details, reason, revokeReason, currentVersion, retryAfter })
  }
}

export function createClient(options: ClientOptions): SessionServiceClient {
  return new SessionServiceClient(options)
}
