// The client's one exception type: the service's error body made typed, or a transport failure in the same shape.
import type { ErrorBody, InvalidReason, ServiceErrorCode } from './types.js'

// Failures with no contract answer: the request timed out, the connection failed, or the answer was not the contract's shape.
export type ClientErrorCode = 'timeout' | 'connection_failed' | 'unexpected_response'

// Known codes autocomplete; a code a newer service adds still arrives as its string.
export type ErrorCode = ServiceErrorCode | ClientErrorCode | (string & {})

export interface SessionServiceErrorInit {
  status: number
  code: ErrorCode
  message: string
  details?: unknown[] | undefined
  reason?: InvalidReason | undefined
  revokeReason?: string | undefined
  currentVersion?: number | undefined
  retryAfter?: number | undefined
  operation: string
  attempts: number
  cause?: unknown | undefined
}

export class SessionServiceError extends Error {
  override readonly name = 'SessionServiceError'
  // The HTTP status, or 0 when no answer arrived (timeout, connection failure).
  readonly status: number
  readonly code: ErrorCode
  readonly details: unknown[]
  // session_invalid only: why the token is not valid.
  readonly reason: InvalidReason | undefined
  // reason "revoked" only: logout, password_change, session_limit, admin, rotated, …
  readonly revokeReason: string | undefined
  // version_conflict only.
  readonly currentVersion: number | undefined
  // Seconds, from the Retry-After header (503 unavailable).
  readonly retryAfter: number | undefined
  // The client method that failed (e.g. "validate") and how many requests it made.
  readonly operation: string
  readonly attempts: number

  constructor(init: SessionServiceErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause })
    this.status = init.status
    this.code = init.code
    this.details = init.details ?? []
    this.reason = init.reason
    this.revokeReason = init.revokeReason
    this.currentVersion = init.currentVersion
    this.retryAfter = init.retryAfter
    this.operation = init.operation
    this.attempts = init.attempts
  }

  // The contract's error body for this error, e.g. to answer a browser with the same reason.
  toBody(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        details: this.details,
        ...(this.reason === undefined ? {} : { reason: this.reason }),
        ...(this.revokeReason === undefined ? {} : { revokeReason: this.revokeReason }),
        ...(this.currentVersion === undefined ? {} : { currentVersion: this.currentVersion }),
      },
    }
  }
}

export function isSessionServiceError(err: unknown): err is SessionServiceError {
  return err instanceof SessionServiceError
}

// A 401 session_invalid: the token is unknown, expired, idle too long or revoked (see `reason`).
export function isSessionInvalid(err: unknown): err is SessionServiceError & { reason: InvalidReason } {
  return err instanceof SessionServiceError && err.code === 'session_invalid'
}

// Retry-After as seconds: delta-seconds or an HTTP date.
export function parseRetryAfter(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined
  if (/^\d+$/.test(header.trim())) return Number(header.trim())
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000))
}
