// GET /v1/revocations: the revocation feed for caches outside the service (long-poll).
import type { EventEmitter } from 'node:events'
import type { FastifyInstance } from 'fastify'
import type { RevocationFeed } from '../sessions/revocation-feed.js'

const RevocationsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: { type: 'string', pattern: '^(0|[1-9][0-9]{0,18})$' },
    wait: { type: 'integer', minimum: 0, maximum: 30, default: 25 },
  },
} as const

const RevocationPage = {
  type: 'object',
  additionalProperties: false,
  required: ['revocations', 'nextCursor'],
  properties: {
    revocations: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['cursor', 'sessionId', 'type', 'reason', 'at'],
        properties: {
          cursor: { type: 'string' },
          sessionId: { type: 'string' },
          type: { type: 'string', enum: ['revoked', 'rotated', 'limit_evicted'] },
          reason: { type: ['string', 'null'] },
          at: { type: 'string', format: 'date-time' },
        },
      },
    },
    nextCursor: { type: 'string' },
  },
} as const

export interface RevocationRoutesOptions {
  feed: RevocationFeed
  // Emits 'closing' when the server shuts down, so waiting requests answer at once instead of holding up the close.
  lifecycle: EventEmitter
}

export async function revocationRoutes(app: FastifyInstance, { feed, lifecycle }: RevocationRoutesOptions): Promise<void> {
  app.get<{ Querystring: { since?: string; wait: number } }>('/revocations', {
    config: { longPoll: true },
    schema: { querystring: RevocationsQuery, response: { 200: RevocationPage } },
  }, async (req, reply) => {
    const gaveUp = new AbortController()
    const giveUp = () => gaveUp.abort()
    // The response's close, not the request's: a GET's request stream closes as soon as it is read.
    reply.raw.once('close', giveUp)
    lifecycle.once('closing', giveUp)
    try {
      const page = await feed.read(req.query.since, req.query.wait, gaveUp.signal)
      return reply.header('cache-control', 'no-store').send(page)
    } finally {
      reply.raw.off('close', giveUp)
      lifecycle.off('closing', giveUp)
    }
  })
}
