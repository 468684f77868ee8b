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

// postgres.js connection errors and the server's "going away" or overload SQLSTATEs: the database, not the request, is at fault.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED',
  '57P01', '57P02', '57P03', '53300', '53400', '57014', '08000', '08001', '08003', '08004', '08006', '40P01', '40001',
])

export function isUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))
}

const FRAMEWORK_CODES: Record<number, string> = {
  400: 'invalid_request',
  404: 'not_found',
  405: 'invalid_request',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  431: 'invalid_request',
}

function validationDetails(err: FastifyError): unknown[] {
  return (err.validation ?? []).map((issue) => ({
    path: issue.instancePath,
    keyword: issue.keyword,
    message: issue.message,
    ...(issue.keyword === 'additionalProperties' ? { property: (issue.params as { additionalProperty?: string }).additionalProperty } : {}),
  }))
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
