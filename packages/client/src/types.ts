// The wire types of the contract (openapi.yaml), written once: the client publishes them and the service's modules use them; tests/client/types.test.ts holds them to the spec and the route schemas.

export const SESSION_STATES = ['active', 'revoked', 'expired', 'idle_timeout'] as const
export type SessionState = (typeof SESSION_STATES)[number]

export const INVALID_REASONS = ['not_found', 'expired', 'idle_timeout', 'revoked'] as const
export type InvalidReason = (typeof INVALID_REASONS)[number]

export const EVENT_TYPES = ['created', 'rotated', 'revoked', 'expired', 'idle_timeout', 'limit_evicted', 'data_updated'] as const
export type EventType = (typeof EVENT_TYPES)[number]

export const REVOCATION_TYPES = ['revoked', 'rotated', 'limit_evicted'] as const
export type RevocationType = (typeof REVOCATION_TYPES)[number]

// Every code the service answers with (ErrorBody.error.code in openapi.yaml).
export const SERVICE_ERROR_CODES = [
  'invalid_request', 'invalid_api_key', 'session_invalid', 'forbidden', 'not_found', 'cursor_expired', 'session_limit',
  'sweep_running', 'version_conflict', 'payload_too_large', 'unsupported_media_type', 'unavailable', 'internal_error',
  // The operator console's sign-in and cookie checks.
  'csrf_refused', 'too_many_attempts',
] as const
export type ServiceErrorCode = (typeof SERVICE_ERROR_CODES)[number]

export const HEALTH_STATUSES = ['ok', 'ready', 'database_unavailable', 'migrations_pending', 'shutting_down'] as const
export type HealthState = (typeof HEALTH_STATUSES)[number]

// A JSON object kept with the session (at most 16 KiB of JSON).
export type SessionData = { [key: string]: unknown }

export interface Session {
  id: string
  userId: string
  policy: string
  data: SessionData
  version: number
  createdAt: string
  lastSeenAt: string
  idleExpiresAt: string
  expiresAt: string
  ip: string | null
  userAgent: string | null
}

export interface SessionStatus {
  session: Session
  state: SessionState
  revokedAt?: string
  revokeReason?: string
}

export interface SessionEnvelope {
  session: Session
}

export interface IssuedSession {
  token: string
  session: Session
  setCookie: string
}

export interface RevokedCount {
  revoked: number
}

export interface AuditEvent {
  id: string
  at: string
  type: EventType
  sessionId: string
  userId: string
  actor: string
  reason: string | null
  ip: string | null
  userAgent: string | null
}

export interface SessionPage {
  sessions: SessionStatus[]
  nextCursor: string | null
}

export interface EventPage {
  events: AuditEvent[]
  nextCursor: string | null
}

export interface SessionList {
  sessions: Session[]
  nextCursor: string | null
}

export interface UserSessionsQuery {
  limit?: number | undefined
  cursor?: string | undefined
}

export interface SweepStep {
  revoked: number
  done: boolean
  nextCursor: string | null
}

export interface AgeBucket {
  lessThan: number | null
  count: number
}

export interface Stats {
  active: number
  revoked: number
  expired: number
  idleTimeout: number
  activeUsers: number
  byPolicy: Record<string, number>
  sessionAge: AgeBucket[]
  idleAge: AgeBucket[]
  createdPerDay: Array<{ day: string; count: number }>
  revokedByReason: Record<string, number>
}

export interface PruneResult {
  deleted: number
  deletedEvents: number
  endedRecorded: number
  skipped: boolean
  done: boolean
}

export interface Revocation {
  cursor: string
  sessionId: string
  type: RevocationType
  reason: string | null
  at: string
}

export interface RevocationPage {
  revocations: Revocation[]
  nextCursor: string
}

export interface HealthStatus {
  status: HealthState
}

export interface ErrorDetail {
  code: string
  message: string
  details: unknown[]
  reason?: InvalidReason
  revokeReason?: string
  currentVersion?: number
  // With too_many_attempts: seconds to wait.
  retryAfter?: number
}

export interface ErrorBody {
  error: ErrorDetail
}

// Request bodies and query strings (an optional member may also be given as undefined: it is then left out).

export interface CreateSessionInput {
  userId: string
  data?: SessionData | undefined
  policy?: string | undefined
  ip?: string | undefined
  userAgent?: string | undefined
}

export interface ValidateInput {
  token: string
  touch?: boolean | undefined
}

export interface RevokeInput {
  token: string
  reason?: string | undefined
}

export interface PatchInput {
  data: SessionData
}

export interface RevokeAllQuery {
  except?: string | undefined
  reason?: string | undefined
}

export interface RevocationsQuery {
  since?: string | undefined
  wait?: number | undefined
}

export interface AdminSessionsQuery {
  userId?: string | undefined
  policy?: string | undefined
  state?: SessionState | undefined
  idleFor?: number | undefined
  // An address or a CIDR block, e.g. "203.0.113.0/24".
  ip?: string | undefined
  limit?: number | undefined
  cursor?: string | undefined
}

export interface AdminEventsQuery {
  userId?: string | undefined
  sessionId?: string | undefined
  type?: EventType | undefined
  since?: string | undefined
  until?: string | undefined
  actor?: string | undefined
  // An address or a CIDR block.
  ip?: string | undefined
  limit?: number | undefined
  cursor?: string | undefined
}

export interface MassRevokeQuery {
  policy?: string | undefined
  userId?: string | undefined
  createdBefore?: string | undefined
  reason?: string | undefined
  all?: boolean | undefined
  cursor?: string | undefined
}
