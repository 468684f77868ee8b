// Operator routes (scope admin): page through sessions and events, statistics, mass revocation and pruning now.
import type { FastifyInstance } from 'fastify'
import type { AdminService } from '../admin/service.js'
import { STATS_STATEMENT_TIMEOUT_MS } from '../admin/stats-store.js'
import type { EventFilter, EventType } from '../audit/store.js'
import { toEvent } from '../audit/store.js'
import type { Config } from '../config.js'
import type { Sql } from '../db.js'
import { parseIpFilter } from '../admin/ip-filter.js'
import { invalidRequest } from '../errors.js'
import { prune } from '../jobs/prune.js'
import type { Metrics } from '../metrics.js'
import type { SessionFilter } from '../sessions/store.js'
import { toSession, type SessionState } from '../sessions/types.js'
import { EVENT_TYPES, SESSION_STATES, text } from './schemas.js'

const limit = { type: 'integer', minimum: 1, maximum: 1000, default: 100 } as const
const cursor = { type: 'string', minLength: 1, maxLength: 512, pattern: '^[A-Za-z0-9_-]+$' } as const
const dateTime = { type: 'string', format: 'date-time' } as const

const SessionsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    userId: text(),
    policy: text(),
    state: { type: 'string', enum: SESSION_STATES },
    idleFor: { type: 'integer', minimum: 0, maximum: 315360000 },
    ip: text(64),
    limit,
    cursor,
  },
} as const

const EventsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    userId: text(),
    sessionId: text(),
    type: { type: 'string', enum: EVENT_TYPES },
    since: dateTime,
    until: dateTime,
    actor: text(),
    ip: text(64),
    limit,
    cursor,
  },
} as const

const MassRevokeQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    policy: text(),
    userId: text(),
    createdBefore: dateTime,
    reason: text(),
    all: { type: 'boolean' },
    cursor,
  },
} as const

const SweepStep = {
  type: 'object',
  additionalProperties: false,
  required: ['revoked', 'done', 'nextCursor'],
  properties: { revoked: { type: 'integer' }, done: { type: 'boolean' }, nextCursor: { type: ['string', 'null'] } },
} as const

const SessionPage = {
  type: 'object',
  additionalProperties: false,
  required: ['sessions', 'nextCursor'],
  properties: {
    sessions: { type: 'array', items: { $ref: 'SessionStatus#' } },
    nextCursor: { type: ['string', 'null'] },
  },
} as const

const EventPage = {
  type: 'object',
  additionalProperties: false,
  required: ['events', 'nextCursor'],
  properties: {
    events: { type: 'array', items: { $ref: 'AuditEvent#' } },
    nextCursor: { type: ['string', 'null'] },
  },
} as const

const buckets = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['lessThan', 'count'],
    properties: { lessThan: { type: ['integer', 'null'] }, count: { type: 'integer' } },
  },
} as const
const counts = { type: 'object', additionalProperties: { type: 'integer' } } as const

const StatsBody = {
  type: 'object',
  additionalProperties: false,
  required: ['active', 'revoked', 'expired', 'idleTimeout', 'activeUsers', 'byPolicy', 'sessionAge', 'idleAge', 'createdPerDay', 'revokedByReason'],
  properties: {
    active: { type: 'integer' },
    revoked: { type: 'integer' },
    expired: { type: 'integer' },
    idleTimeout: { type: 'integer' },
    activeUsers: { type: 'integer' },
    byPolicy: counts,
    sessionAge: buckets,
    idleAge: buckets,
    createdPerDay: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['day', 'count'],
        properties: { day: { type: 'string' }, count: { type: 'integer' } },
      },
    },
    revokedByReason: counts,
  },
} as const

const PruneBody = {
  type: 'object',
  additionalProperties: false,
  required: ['deleted', 'deletedEvents', 'endedRecorded', 'skipped', 'done'],
  properties: {
    deleted: { type: 'integer' }, deletedEvents: { type: 'integer' }, endedRecorded: { type: 'integer' }, skipped: { type: 'boolean' }, done: { type: 'boolean' },
  },
} as const

export interface AdminRoutesOptions {
  admin: AdminService
  sql: Sql
  config: Config
  metrics: Metrics
}

export async function adminRoutes(app: FastifyInstance, { admin, sql, config, metrics }: AdminRoutesOptions): Promise<void> {
  app.get<{ Querystring: { userId?: string; policy?: string; state?: SessionState; idleFor?: number; ip?: string; limit: number; cursor?: string } }>('/sessions', {
    schema: { querystring: SessionsQuery, response: { 200: SessionPage } },
  }, async (req) => {
    const { limit: pageSize, cursor: after, ip, ...rest } = req.query
    const filter: SessionFilter = { ...rest, ...(ip === undefined ? {} : { ipBlock: parseIpFilter(ip) }) }
    const page = await admin.listSessions(filter, after, pageSize)
    return {
      sessions: page.items.map((row) => ({
        session: toSession(row),
        state: row.state,
        ...(row.revoked_at === null ? {} : { revokedAt: row.revoked_at.toISOString(), revokeReason: row.revoke_reason }),
      })),
      nextCursor: page.nextCursor,
    }
  })

  app.get<{ Querystring: { userId?: string; sessionId?: string; type?: EventType; since?: string; until?: string; actor?: string; ip?: string; limit: number; cursor?: string } }>('/events', {
    schema: { querystring: EventsQuery, response: { 200: EventPage } },
  }, async (req) => {
    const { limit: pageSize, cursor: after, since, until, ip, ...rest } = req.query
    const filter: EventFilter = {
      ...rest,
      ...(since === undefined ? {} : { since: new Date(since) }),
      ...(until === undefined ? {} : { until: new Date(until) }),
      ...(ip === undefined ? {} : { ipBlock: parseIpFilter(ip) }),
    }
    const page = await admin.listEvents(filter, after, pageSize)
    return { events: page.items.map(toEvent), nextCursor: page.nextCursor }
  })

  // Stats may read the whole sessions table for longer than a request's usual database bound (see stats-store.ts).
  app.get('/stats', { schema: { response: { 200: StatsBody } }, config: { databaseTimeoutMs: STATS_STATEMENT_TIMEOUT_MS + 5_000 } }, async () => admin.stats())

  // Long operations work in batches for at most sweepBudgetMs, then answer what they did and whether they are done; the
  // gate's bound for them allows that budget plus one batch begun just before it ran out (itself ended by statement_timeout).
  // They never answer 503 while their work goes on, so a retry can never meet its own first attempt still sweeping.
  const sweepBudgetMs = config.databaseStatementTimeoutMs
  const sweepLimits = { databaseTimeoutMs: sweepBudgetMs + config.databaseStatementTimeoutMs * 2 + 1000 }

  app.delete<{ Querystring: { policy?: string; userId?: string; createdBefore?: string; reason?: string; all?: boolean; cursor?: string } }>('/sessions', {
    schema: { querystring: MassRevokeQuery, response: { 200: SweepStep } },
    config: sweepLimits,
  }, async (req) => {
    const { policy, userId, createdBefore, reason, all, cursor: from } = req.query
    const filter: SessionFilter = {
      ...(policy === undefined ? {} : { policy }),
      ...(userId === undefined ? {} : { userId }),
      ...(createdBefore === undefined ? {} : { createdBefore: new Date(createdBefore) }),
    }
    if (Object.keys(filter).length === 0 && all !== true) {
      throw invalidRequest('mass revocation needs at least one filter (policy, userId, createdBefore) or all=true')
    }
    const step = await admin.revokeMatching(filter, reason, { name: req.apiKey!.name }, { budgetMs: sweepBudgetMs, cursor: from })
    req.log.warn({ filter, reason, revoked: step.revoked, done: step.done, actor: req.apiKey!.name }, 'mass revocation')
    return step
  })

  app.post('/prune', { schema: { response: { 200: PruneBody } }, config: sweepLimits }, async () => {
    const result = await prune(sql, config, metrics, { budgetMs: sweepBudgetMs })
    return { deleted: result.sessions, deletedEvents: result.events, endedRecorded: result.endedRecorded, skipped: !result.ran, done: result.done }
  })
}
