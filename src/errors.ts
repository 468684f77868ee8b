// The contract's error shape, each error named once, and the one error handler that maps everything to it.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

export type InvalidReason = 'not_found' | 'expired' | 'idle_timeout' | 'revoked'

export interface ErrorBody {
  error: { code: string; message: string; details: unknown[]; [extra: string]: unknown }
}

export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly details: unknown[] = [],
  ) {
    super(message)
  }
}

export const RETRY_AFTER_SECONDS = 2

export const invalidRequest = (message: string, details: unknown[] = []) =>
  new AppError(400, 'invalid_request', message, {}, details)
export const invalidApiKey = () => new AppError(401, 'invalid_api_key', 'missing, malformed or unknown API key')
export const forbidden = (scope: string) => new AppError(403, 'forbidden', `this route needs an API key with scope ${scope}`)
export const notFound = (message = 'not found') => new AppError(404, 'not_found', message)
export const sessionLimit = (maxPerUser: number) =>
  new AppError(409, 'session_limit', `the user already has ${maxPerUser} active sessions of this policy`)
export const versionConflict = (current: number) =>
  new AppError(412, 'version_conflict', 'If-Match does not match the current version', { currentVersion: current })
export const cursorExpired = () =>
  new AppError(410, 'cursor_expired', 'the cursor is older than the audit log keeps (or unknown): flush and start again without since')
export const sweepRunning = () =>
  new AppError(409, 'sweep_running', 'another sweep of this kind is running; call again once it has answered')
export const payloadTooLarge = (message: string) => new AppError(413, 'payload_too_large', message)
// The operator console: a state-changing call without its CSRF token or from another origin, and sign-in throttling.
export const csrfRefused = (message: string) => new AppError(403, 'csrf_refused', message)
export const tooManyAttempts = (retryAfter: number) =>
  new AppError(429, 'too_many_attempts', `too many wrong keys from this address; retry in ${retryAfter} s`, { retryAfter })
export const unavailable = (message = 'the database cannot be reached; retry shortly') => new AppError(503, 'unavailable', message)

export function sessionInvalid(reason: InvalidReason, revokeReason?: string): AppError {
  const extra: Record<string, unknown> = { reason }
  if (reason === 'revoked' && revokeReason !== undefined) extra.revokeReason = revokeReason
  const message = reason === 'not_found' ? 'session not found' : `session ${reason === 'idle_timeout' ? 'idle timeout' : reason}`
  return new AppError(401, 'session_invalid', message, extra)
}

export function toBody(err: AppError): ErrorBody {
  return { error: { code: err.code, message: err.message, details: err.details, ...err.extra } }
}

// Any failure to obtain or keep a connection is the database's fault, not the request's: 503 with Retry-After.
// - the socket or the driver: refused, reset, timed out, closed;
// - anything the server ends the connection with (severity FATAL or PANIC), whatever its SQLSTATE: a database closed to
//   connections (55000, ALLOW_CONNECTIONS false), one that does not exist (3D000), authentication (28000, 28P01), too many
//   connections (53300), starting up or shutting down (57P03, 57P01, 57P02);
// - by SQLSTATE also at ERROR severity: connection exceptions (class 08), insufficient resources (class 53), operator
//   intervention (57P0x) and statement_timeout (57014).
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED',
  '57014', '3D000', '28000', '28P01',
])
const UNAVAILABLE_CLASSES = ['08', '53', '57P']
// Deadlock and serialization failure: the database aborted a transaction that a second attempt would likely complete.
// Transactions are retried once (db.ts); a second conflict is a 503 too, but not one that says the database is unreachable.
const CONFLICT_CODES = new Set(['40P01', '40001'])

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' ? code : undefined
}

export function isConflict(err: unknown): boolean {
  const code = codeOf(err)
  return code !== undefined && CONFLICT_CODES.has(code)
}

export function isUnavailable(err: unknown): boolean {
  const code = codeOf(err)
  if (code === undefined) return false
  if (UNAVAILABLE_CODES.has(code) || CONFLICT_CODES.has(code) || UNAVAILABLE_CLASSES.some((prefix) => code.startsWith(prefix))) return true
  const severity = (err as { severity?: unknown }).severity
  return severity === 'FATAL' || severity === 'PANIC'
}

const FRAMEWORK_CODES: Record<number, string> = {
  400: 'invalid_request',
  404: 'not_found',
  405: 'invalid_request',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  431: 'invalid_request',
}

// contract: never echo input. The validator compiler (http/validation.ts) leaves only schema-made paths and messages, and
// for an unknown property the names accepted instead; no other ajv param is passed on.
function validationDetails(err: FastifyError): unknown[] {
  return (err.validation ?? []).map((issue) => {
    const allowed = (issue.params as { allowed?: unknown }).allowed
    return { path: issue.instancePath, keyword: issue.keyword, message: issue.message, ...(Array.isArray(allowed) ? { allowed } : {}) }
  })
}

function toAppError(err: FastifyError): AppError {
  if (err instanceof AppError) return err
  if (err.validation) {
    const context = err.validationContext ?? 'request'
    const first = err.validation[0]
    const where = `${context}${first?.instancePath ?? ''}`
    const message = first ? `${where} ${first.message ?? 'is invalid'}` : `${context} is invalid`
    return invalidRequest(message, validationDetails(err))
  }
  if (isConflict(err)) return unavailable('the request conflicted with concurrent work in the database; retry shortly')
  if (isUnavailable(err)) return unavailable()
  const status = err.statusCode
  if (status !== undefined && FRAMEWORK_CODES[status] !== undefined) {
    const message = status === 413 ? 'request body is too large'
      : status === 415 ? 'the body must be application/json'
        : status === 404 ? 'not found'
          : frameworkMessage(err)
    return new AppError(status, FRAMEWORK_CODES[status], message)
  }
  return new AppError(500, 'internal_error', 'internal error')
}

// Framework 400s (bad JSON, prototype poisoning, empty body) carry fixed messages; never echo the body.
function frameworkMessage(err: FastifyError): string {
  switch (err.code) {
    case 'FST_ERR_CTP_EMPTY_JSON_BODY': return 'the JSON body is empty'
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH': return 'content-length does not match the body'
    default:
      // secure-json-parse reports __proto__ / constructor.prototype keys as a SyntaxError too.
      if (/prototype|constructor/i.test(err.message)) return 'the body contains a forbidden property name (__proto__ or constructor.prototype)'
      if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return 'the body is not valid JSON'
      return 'the request is malformed'
  }
}

export function createErrorHandler(onError: (code: string) => void) {
  return function handleError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
    const appError = toAppError(err)
    onError(appError.code)
    return sendError(appError, err, req, reply)
  }
}

function sendError(appError: AppError, err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (appError.code === 'unavailable') {
    req.log.warn({ code: (err as { code?: string }).code }, appError.message)
    void reply.header('retry-after', String(RETRY_AFTER_SECONDS))
  } else if (appError.statusCode >= 500) {
    req.log.error({ err }, 'request failed')
  } else {
    req.log.info({ code: appError.code, statusCode: appError.statusCode }, 'request rejected')
  }
  return reply.code(appError.statusCode).send(toBody(appError))
}
