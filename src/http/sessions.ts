// Routes for one session: create, validate, touch, rotate, revoke (by token or id), read, and merge-patch its data.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { CookieConfig } from '../config.js'
import { invalidRequest } from '../errors.js'
import type { SessionService } from '../sessions/service.js'
import { clearingCookie, sessionCookie } from '../sessions/cookie.js'
import { toSession } from '../sessions/types.js'
import type { SessionData } from '../sessions/types.js'
import { IssuedSession, NoContent, SessionEnvelope, text, tokenField } from './schemas.js'

export interface SessionRoutesOptions {
  sessions: SessionService
  cookie: CookieConfig
}

const CreateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['userId'],
  properties: {
    userId: text(),
    data: { type: 'object' },
    policy: text(),
    ip: text(),
    userAgent: text(1024),
  },
} as const

const ValidateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: { token: tokenField, touch: { type: 'boolean' } },
} as const

const TokenBody = {
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: { token: tokenField },
} as const

const RevokeBody = {
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: { token: tokenField, reason: text() },
} as const

const PatchBody = {
  type: 'object',
  additionalProperties: false,
  required: ['data'],
  properties: { data: { type: 'object' } },
} as const

const IdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: text() },
} as const

const ReasonQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: text() },
} as const

const IfMatchHeaders = {
  type: 'object',
  properties: { 'if-match': { type: 'string', maxLength: 64 } },
} as const

// If-Match (RFC 9110 13.1.1): "*" or a list of entity tags; only a strong tag equal to the current version matches.
// A syntactically broken header is a 400; a well-formed one that does not match is the service's 412.
const ENTITY_TAG = /^(W\/)?"([\x21\x23-\x7e]*)"$/

export function parseIfMatch(header: string | undefined): ((version: number) => boolean) | undefined {
  if (header === undefined || header.trim() === '*') return undefined
  const strongTags = header.split(',').map((part) => {
    const tag = ENTITY_TAG.exec(part.trim())
    if (tag === null) throw invalidRequest('headers/if-match must be * or a list of quoted versions such as "3"')
    return tag[1] === undefined ? tag[2] : null
  })
  return (version) => strongTags.includes(String(version))
}

const actorOf = (req: FastifyRequest) => ({ name: req.apiKey!.name })

export async function sessionRoutes(app: FastifyInstance, { sessions, cookie }: SessionRoutesOptions): Promise<void> {
  app.post<{ Body: { userId: string; data?: SessionData; policy?: string; ip?: string; userAgent?: string } }>('/sessions', {
    schema: { body: CreateBody, response: { 201: IssuedSession } },
  }, async (req, reply) => {
    const { token, row } = await sessions.create(req.body, actorOf(req))
    req.sessionId = row.id
    req.log.info({ sessionId: row.id, userId: row.user_id, policy: row.policy }, 'session created')
    return reply.code(201).send({ token, session: toSession(row), setCookie: sessionCookie(cookie, token, row) })
  })

  app.post<{ Body: { token: string; touch?: boolean } }>('/sessions/validate', {
    schema: { body: ValidateBody, response: { 200: SessionEnvelope } },
    config: { logSuccessAtDebug: true },
  }, async (req) => {
    const { token, touch = true } = req.body
    const row = await sessions.validate(token, { touch })
    req.sessionId = row.id
    return { session: toSession(row) }
  })

  app.post<{ Body: { token: string } }>('/sessions/touch', {
    schema: { body: TokenBody, response: { 200: SessionEnvelope } },
  }, async (req) => {
    const row = await sessions.touch(req.body.token)
    req.sessionId = row.id
    return { session: toSession(row) }
  })

  app.post<{ Body: { token: string } }>('/sessions/rotate', {
    schema: { body: TokenBody, response: { 200: IssuedSession } },
  }, async (req) => {
    const { token, row } = await sessions.rotate(req.body.token, actorOf(req))
    req.sessionId = row.id
    req.log.info({ sessionId: row.id, userId: row.user_id }, 'session rotated')
    return { token, session: toSession(row), setCookie: sessionCookie(cookie, token, row) }
  })

  app.post<{ Body: { token: string; reason?: string } }>('/sessions/revoke', {
    schema: { body: RevokeBody, response: { 204: NoContent } },
  }, async (req, reply) => {
    const revoked = await sessions.revokeByToken(req.body.token, req.body.reason, actorOf(req))
    req.sessionId = revoked?.id ?? null
    if (revoked !== undefined) req.log.info({ sessionId: revoked.id, userId: revoked.user_id, reason: revoked.revoke_reason }, 'session revoked')
    return reply.code(204).header('set-cookie', clearingCookie(cookie)).send()
  })

  app.get<{ Params: { id: string } }>('/sessions/:id', {
    schema: { params: IdParams, response: { 200: { $ref: 'SessionStatus#' } } },
  }, async (req, reply) => {
    const status = await sessions.getById(req.params.id)
    req.sessionId = status.session.id
    return reply.header('etag', `"${status.session.version}"`).send(status)
  })

  app.patch<{ Params: { id: string }; Body: { data: SessionData }; Headers: { 'if-match'?: string } }>('/sessions/:id', {
    schema: { params: IdParams, headers: IfMatchHeaders, body: PatchBody, response: { 200: SessionEnvelope } },
  }, async (req, reply) => {
    const ifMatch = parseIfMatch(req.headers['if-match'])
    const row = await sessions.patchData(req.params.id, req.body.data, ifMatch, actorOf(req))
    req.sessionId = row.id
    return reply.header('etag', `"${row.version}"`).send({ session: toSession(row) })
  })

  app.delete<{ Params: { id: string }; Querystring: { reason?: string } }>('/sessions/:id', {
    schema: { params: IdParams, querystring: ReasonQuery, response: { 204: NoContent } },
  }, async (req, reply) => {
    await sessions.revokeById(req.params.id, req.query.reason, actorOf(req))
    req.sessionId = req.params.id
    return reply.code(204).send()
  })
}
