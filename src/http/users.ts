// Routes for a user's sessions: list their devices, and end them all (but one) on a password change.
import type { FastifyInstance } from 'fastify'
import type { SessionService } from '../sessions/service.js'
import { toSession } from '../sessions/types.js'
import { RevokedCount, text } from './schemas.js'

export const REVOKE_ALL_TIMEOUT_MS = 120_000

const UserParams = {
  type: 'object',
  required: ['userId'],
  properties: { userId: text() },
} as const

const RevokeAllQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { except: text(), reason: text() },
} as const

const ListQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    cursor: { type: 'string', minLength: 1, maxLength: 512, pattern: '^[A-Za-z0-9_-]+$' },
  },
} as const

const SessionList = {
  type: 'object',
  additionalProperties: false,
  required: ['sessions', 'nextCursor'],
  properties: { sessions: { type: 'array', items: { $ref: 'Session#' } }, nextCursor: { type: ['string', 'null'] } },
} as const

export async function userRoutes(app: FastifyInstance, { sessions }: { sessions: SessionService }): Promise<void> {
  app.get<{ Params: { userId: string }; Querystring: { limit: number; cursor?: string } }>('/users/:userId/sessions', {
    schema: { params: UserParams, querystring: ListQuery, response: { 200: SessionList } },
  }, async (req) => {
    const page = await sessions.listForUser(req.params.userId, req.query)
    return { sessions: page.items.map(toSession), nextCursor: page.nextCursor }
  })

  app.delete<{ Params: { userId: string }; Querystring: { except?: string; reason?: string } }>('/users/:userId/sessions', {
    schema: { params: UserParams, querystring: RevokeAllQuery, response: { 200: RevokedCount } },
    // contract: one transaction however many sessions the user has; its batches each end by statement_timeout, and the
    // whole may take longer than the gate's usual bound (50,000 took 15–25 s on a loaded test machine), so it gets its own.
    config: { databaseTimeoutMs: REVOKE_ALL_TIMEOUT_MS },
  }, async (req) => {
    const { except, reason } = req.query
    const revoked = await sessions.revokeAllForUser(req.params.userId, except, reason, { name: req.apiKey!.name })
    req.log.info({ userId: req.params.userId, except, reason, revoked }, 'user sessions revoked')
    return { revoked }
  })
}
