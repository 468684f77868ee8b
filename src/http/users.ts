// Routes for a user's sessions: list their devices, and end them all (but one) on a password change.
import type { FastifyInstance } from 'fastify'
import type { SessionService } from '../sessions/service.js'
import { toSession } from '../sessions/types.js'
import { RevokedCount, text } from './schemas.js'

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

const SessionList = {
  type: 'object',
  additionalProperties: false,
  required: ['sessions'],
  properties: { sessions: { type: 'array', items: { $ref: 'Session#' } } },
} as const

export async function userRoutes(app: FastifyInstance, { sessions }: { sessions: SessionService }): Promise<void> {
  app.get<{ Params: { userId: string } }>('/users/:userId/sessions', {
    schema: { params: UserParams, response: { 200: SessionList } },
  }, async (req) => ({ sessions: (await sessions.listForUser(req.params.userId)).map(toSession) }))

  app.delete<{ Params: { userId: string }; Querystring: { except?: string; reason?: string } }>('/users/:userId/sessions', {
    schema: { params: UserParams, querystring: RevokeAllQuery, response: { 200: RevokedCount } },
  }, async (req) => {
    const { except, reason } = req.query
    const revoked = await sessions.revokeAllForUser(req.params.userId, except, reason, { name: req.apiKey!.name })
    req.log.info({ userId: req.params.userId, except, reason, revoked }, 'user sessions revoked')
    return { revoked }
  })
}
