// Shared JSON schemas (with $id) and the building blocks of request schemas; response schemas list every field that may leave.
import type { FastifyInstance } from 'fastify'
import { EVENT_TYPES, SESSION_STATES } from '@session-service/client'

// contract: no control characters; lone surrogates would be silently replaced on their way to Postgres, so they are refused too.
export const TEXT_PATTERN = '^[^\\u0000-\\u001F\\u007F\\uD800-\\uDFFF]*$'

export const text = (maxLength = 256) => ({ type: 'string', minLength: 1, maxLength, pattern: TEXT_PATTERN }) as const

// Tokens are only typed here: a malformed token is a 401 not_found, decided by the service without a query.
export const tokenField = { type: 'string' } as const

export { EVENT_TYPES, SESSION_STATES } from '@session-service/client'

const dateTime = { type: 'string', format: 'date-time' } as const
const nullableText = { type: ['string', 'null'] } as const

export const Session = {
  $id: 'Session',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'userId', 'policy', 'data', 'version', 'createdAt', 'lastSeenAt', 'idleExpiresAt', 'expiresAt', 'ip', 'userAgent'],
  properties: {
    id: { type: 'string' },
    userId: { type: 'string' },
    policy: { type: 'string' },
    data: { type: 'object', additionalProperties: true },
    version: { type: 'integer' },
    createdAt: dateTime,
    lastSeenAt: dateTime,
    idleExpiresAt: dateTime,
    expiresAt: dateTime,
    ip: nullableText,
    userAgent: nullableText,
  },
} as const

export const SessionStatus = {
  $id: 'SessionStatus',
  type: 'object',
  additionalProperties: false,
  required: ['session', 'state'],
  properties: {
    session: { $ref: 'Session#' },
    state: { type: 'string', enum: SESSION_STATES },
    revokedAt: dateTime,
    revokeReason: { type: 'string' },
  },
} as const

export const AuditEvent = {
  $id: 'AuditEvent',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'at', 'type', 'sessionId', 'userId', 'actor', 'reason', 'ip', 'userAgent'],
  properties: {
    id: { type: 'string' },
    at: dateTime,
    type: { type: 'string', enum: EVENT_TYPES },
    sessionId: { type: 'string' },
    userId: { type: 'string' },
    actor: { type: 'string' },
    reason: nullableText,
    ip: nullableText,
    userAgent: nullableText,
  },
} as const

export const ErrorBody = {
  $id: 'ErrorBody',
  type: 'object',
  additionalProperties: false,
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'array', items: {} },
        reason: { type: 'string', enum: ['not_found', 'expired', 'idle_timeout', 'revoked'] },
        revokeReason: { type: 'string' },
        currentVersion: { type: 'integer' },
        retryAfter: { type: 'integer' },
      },
    },
  },
} as const

export const SessionEnvelope = {
  type: 'object',
  additionalProperties: false,
  required: ['session'],
  properties: { session: { $ref: 'Session#' } },
} as const

export const IssuedSession = {
  type: 'object',
  additionalProperties: false,
  required: ['token', 'session', 'setCookie'],
  properties: { token: { type: 'string' }, session: { $ref: 'Session#' }, setCookie: { type: 'string' } },
} as const

export const RevokedCount = {
  type: 'object',
  additionalProperties: false,
  required: ['revoked'],
  properties: { revoked: { type: 'integer' } },
} as const

export const NoContent = { type: 'null' } as const

// contract: an unknown query parameter is a 400 on every route, as an unknown body field is (a typo such as ?user_id= on a
// destructive route must not widen what it does). Routes without query parameters get this empty, closed schema.
export const NoQuery = { type: 'object', additionalProperties: false, properties: {} } as const

export function closedQuery(schema: unknown): unknown {
  if (schema === undefined) return NoQuery
  const object = schema as { additionalProperties?: unknown }
  return object.additionalProperties === false ? schema : { ...object, additionalProperties: false }
}

export function addSharedSchemas(app: FastifyInstance): void {
  for (const schema of [Session, SessionStatus, AuditEvent, ErrorBody]) app.addSchema(schema)
}
