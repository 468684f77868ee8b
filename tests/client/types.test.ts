// The client's hand-written types cannot drift: each type's keys (required and optional) are fixed here at compile time,
// checked against the exported route schemas (also at compile time), and against openapi.yaml at run time; every operation
// in openapi.yaml has a client method.
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import * as C from '../../packages/client/src/index.js'
import * as S from '../../src/http/schemas.js'
import { ROOT } from '../support/process.js'

// --- compile-time machinery -------------------------------------------------------------------------------------------

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false
type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T]
type OptionalKeys<T> = Exclude<keyof T, RequiredKeys<T>>
function assertType<Condition extends true>(): Condition | void {}

interface Shape {
  required: string[]
  optional: string[]
}

// shape<T>()({ required: [...], optional: [...] }) compiles only when the lists name exactly T's required and optional keys.
function shape<T>() {
  return <R extends readonly RequiredKeys<T>[], O extends readonly OptionalKeys<T>[]>(
    lists: { required: R; optional: O }
      & (Equal<R[number], RequiredKeys<T>> extends true ? unknown : { missingRequired: Exclude<RequiredKeys<T>, R[number]> })
      & (Equal<O[number], OptionalKeys<T>> extends true ? unknown : { missingOptional: Exclude<OptionalKeys<T>, O[number]> }),
  ): Shape => ({ required: [...lists.required] as string[], optional: [...lists.optional] as string[] })
}

// --- against the route schemas the service serialises with (compile time) ---------------------------------------------

type PropsOf<Schema> = Schema extends { properties: infer P } ? keyof P : never
type RequiredOf<Schema> = Schema extends { required: readonly (infer R)[] } ? R : never
type Matches<T, Schema> = Equal<keyof T, PropsOf<Schema>> extends true ? Equal<RequiredKeys<T>, RequiredOf<Schema>> : false

assertType<Matches<C.Session, typeof S.Session>>()
assertType<Matches<C.SessionStatus, typeof S.SessionStatus>>()
assertType<Matches<C.AuditEvent, typeof S.AuditEvent>>()
assertType<Matches<C.ErrorBody, typeof S.ErrorBody>>()
assertType<Matches<C.ErrorDetail, typeof S.ErrorBody.properties.error>>()
assertType<Matches<C.SessionEnvelope, typeof S.SessionEnvelope>>()
assertType<Matches<C.IssuedSession, typeof S.IssuedSession>>()
assertType<Matches<C.RevokedCount, typeof S.RevokedCount>>()
assertType<Equal<C.SessionState, (typeof S.SESSION_STATES)[number]>>()
assertType<Equal<C.EventType, (typeof S.EVENT_TYPES)[number]>>()
assertType<Equal<C.InvalidReason, (typeof S.ErrorBody.properties.error.properties.reason.enum)[number]>>()

// --- against openapi.yaml (run time) -------------------------------------------------------------------------------------

type Json = Record<string, unknown>
const spec = parse(await readFile(path.join(ROOT, 'openapi.yaml'), 'utf8')) as Json

function at(pointer: string): Json {
  let node: unknown = spec
  for (const part of pointer.replace(/^#\//, '').split('/')) {
    node = (node as Json | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  if (node === undefined) throw new Error(`openapi.yaml has nothing at ${pointer}`)
  return deref(node as Json)
}
const deref = (node: Json): Json => (typeof node.$ref === 'string' ? at(node.$ref) : node)
const op = (pathName: string, method: string) => `#/paths/${pathName.replace(/\//g, '~1')}/${method}`
const requestBody = (pathName: string, method: string) => `${op(pathName, method)}/requestBody/content/application~1json/schema`
const answer = (pathName: string, method: string, status: string) => `${op(pathName, method)}/responses/${status}/content/application~1json/schema`

function objectShape(pointer: string): Shape {
  const schema = at(pointer)
  const names = Object.keys((schema.properties ?? {}) as Json)
  const required = (schema.required ?? []) as string[]
  return { required: [...required].sort(), optional: names.filter((n) => !required.includes(n)).sort() }
}

function queryShape(pathName: string, method: string): Shape {
  const operation = at(op(pathName, method))
  const params = ((operation.parameters ?? []) as Json[]).map(deref).filter((p) => p.in === 'query')
  return {
    required: params.filter((p) => p.required === true).map((p) => String(p.name)).sort(),
    optional: params.filter((p) => p.required !== true).map((p) => String(p.name)).sort(),
  }
}

const sorted = (s: Shape): Shape => ({ required: [...s.required].sort(), optional: [...s.optional].sort() })

const SHAPES: Array<[string, Shape, () => Shape]> = [
  ['Session', shape<C.Session>()({ required: ['id', 'userId', 'policy', 'data', 'version', 'createdAt', 'lastSeenAt', 'idleExpiresAt', 'expiresAt', 'ip', 'userAgent'], optional: [] }), () => objectShape('#/components/schemas/Session')],
  ['SessionStatus', shape<C.SessionStatus>()({ required: ['session', 'state'], optional: ['revokedAt', 'revokeReason'] }), () => objectShape('#/components/schemas/SessionStatus')],
  ['SessionEnvelope', shape<C.SessionEnvelope>()({ required: ['session'], optional: [] }), () => objectShape('#/components/schemas/SessionEnvelope')],
  ['IssuedSession', shape<C.IssuedSession>()({ required: ['token', 'session', 'setCookie'], optional: [] }), () => objectShape('#/components/schemas/IssuedSession')],
  ['RevokedCount', shape<C.RevokedCount>()({ required: ['revoked'], optional: [] }), () => objectShape('#/components/responses/RevokedCount/content/application~1json/schema')],
  ['AuditEvent', shape<C.AuditEvent>()({ required: ['id', 'at', 'type', 'sessionId', 'userId', 'actor', 'reason', 'ip', 'userAgent'], optional: [] }), () => objectShape('#/components/schemas/AuditEvent')],
  ['AgeBucket', shape<C.AgeBucket>()({ required: ['lessThan', 'count'], optional: [] }), () => objectShape('#/components/schemas/AgeBucket')],
  ['Stats', shape<C.Stats>()({ required: ['active', 'revoked', 'expired', 'idleTimeout', 'activeUsers', 'byPolicy', 'sessionAge', 'idleAge', 'createdPerDay', 'revokedByReason'], optional: [] }), () => objectShape('#/components/schemas/Stats')],
  ['HealthStatus', shape<C.HealthStatus>()({ required: ['status'], optional: [] }), () => objectShape('#/components/schemas/HealthStatus')],
  ['ErrorBody', shape<C.ErrorBody>()({ required: ['error'], optional: [] }), () => objectShape('#/components/schemas/ErrorBody')],
  ['ErrorDetail', shape<C.ErrorDetail>()({ required: ['code', 'message', 'details'], optional: ['reason', 'revokeReason', 'currentVersion', 'retryAfter'] }), () => objectShape('#/components/schemas/ErrorBody/properties/error')],
  ['CreateSessionInput', shape<C.CreateSessionInput>()({ required: ['userId'], optional: ['data', 'policy', 'ip', 'userAgent'] }), () => objectShape(requestBody('/v1/sessions', 'post'))],
  ['ValidateInput', shape<C.ValidateInput>()({ required: ['token'], optional: ['touch'] }), () => objectShape(requestBody('/v1/sessions/validate', 'post'))],
  ['RevokeInput', shape<C.RevokeInput>()({ required: ['token'], optional: ['reason'] }), () => objectShape(requestBody('/v1/sessions/revoke', 'post'))],
  ['PatchInput', shape<C.PatchInput>()({ required: ['data'], optional: [] }), () => objectShape(requestBody('/v1/sessions/{id}', 'patch'))],
  ['SessionList', shape<C.SessionList>()({ required: ['sessions', 'nextCursor'], optional: [] }), () => objectShape(answer('/v1/users/{userId}/sessions', 'get', '200'))],
  ['UserSessionsQuery', shape<C.UserSessionsQuery>()({ required: [], optional: ['limit', 'cursor'] }), () => queryShape('/v1/users/{userId}/sessions', 'get')],
  ['RevokeAllQuery', shape<C.RevokeAllQuery>()({ required: [], optional: ['except', 'reason'] }), () => queryShape('/v1/users/{userId}/sessions', 'delete')],
  ['RevocationsQuery', shape<C.RevocationsQuery>()({ required: [], optional: ['since', 'wait'] }), () => queryShape('/v1/revocations', 'get')],
  ['RevocationPage', shape<C.RevocationPage>()({ required: ['revocations', 'nextCursor'], optional: [] }), () => objectShape(answer('/v1/revocations', 'get', '200'))],
  ['Revocation', shape<C.Revocation>()({ required: ['cursor', 'sessionId', 'type', 'reason', 'at'], optional: [] }), () => objectShape(`${answer('/v1/revocations', 'get', '200')}/properties/revocations/items`)],
  ['AdminSessionsQuery', shape<C.AdminSessionsQuery>()({ required: [], optional: ['userId', 'policy', 'state', 'idleFor', 'ip', 'limit', 'cursor'] }), () => queryShape('/v1/admin/sessions', 'get')],
  ['SessionPage', shape<C.SessionPage>()({ required: ['sessions', 'nextCursor'], optional: [] }), () => objectShape(answer('/v1/admin/sessions', 'get', '200'))],
  ['AdminEventsQuery', shape<C.AdminEventsQuery>()({ required: [], optional: ['userId', 'sessionId', 'type', 'since', 'until', 'actor', 'ip', 'limit', 'cursor'] }), () => queryShape('/v1/admin/events', 'get')],
  ['EventPage', shape<C.EventPage>()({ required: ['events', 'nextCursor'], optional: [] }), () => objectShape(answer('/v1/admin/events', 'get', '200'))],
  ['MassRevokeQuery', shape<C.MassRevokeQuery>()({ required: [], optional: ['policy', 'userId', 'createdBefore', 'reason', 'all', 'cursor'] }), () => queryShape('/v1/admin/sessions', 'delete')],
  ['SweepStep', shape<C.SweepStep>()({ required: ['revoked', 'done', 'nextCursor'], optional: [] }), () => objectShape(answer('/v1/admin/sessions', 'delete', '200'))],
  ['PruneResult', shape<C.PruneResult>()({ required: ['deleted', 'deletedEvents', 'endedRecorded', 'skipped', 'done'], optional: [] }), () => objectShape(answer('/v1/admin/prune', 'post', '200'))],
]

t.test('every client type has the keys of its openapi.yaml schema, required and optional alike', async (t) => {
  for (const [name, client, fromSpec] of SHAPES) t.same(sorted(client), fromSpec(), name)
})

const enumAt = (pointer: string) => [...(at(pointer).enum as string[])].sort()

t.test('every client enum lists the values of openapi.yaml', async (t) => {
  t.same([...C.SESSION_STATES].sort(), enumAt('#/components/schemas/SessionState'), 'SessionState')
  t.same([...C.EVENT_TYPES].sort(), enumAt('#/components/schemas/EventType'), 'EventType')
  t.same([...C.INVALID_REASONS].sort(), enumAt('#/components/schemas/ErrorBody/properties/error/properties/reason'), 'InvalidReason')
  t.same([...C.HEALTH_STATUSES].sort(), enumAt('#/components/schemas/HealthStatus/properties/status'), 'HealthStatus')
  t.same([...C.REVOCATION_TYPES].sort(), enumAt(`${answer('/v1/revocations', 'get', '200')}/properties/revocations/items/properties/type`), 'RevocationType')

  // The codes the spec names: ErrorBody's enum, and any other a response's example answers with.
  const named = new Set(enumAt('#/components/schemas/ErrorBody/properties/error/properties/code'))
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit)
    else if (node !== null && typeof node === 'object') {
      const code = ((node as Json).example as { error?: { code?: unknown } } | undefined)?.error?.code
      if (typeof code === 'string') named.add(code)
      Object.values(node as Json).forEach(visit)
    }
  }
  visit(spec)
  t.same([...C.SERVICE_ERROR_CODES].sort(), [...named].sort(), 'error codes')
})

// operationId → the client method that calls it.
const METHODS: Record<string, keyof C.SessionServiceClient> = {
  createSession: 'create',
  validateSession: 'validate',
  touchSession: 'touch',
  rotateSession: 'rotate',
  revokeSession: 'revoke',
  getSession: 'get',
  patchSessionData: 'patch',
  revokeSessionById: 'revokeById',
  listUserSessions: 'listUserSessions',
  revokeUserSessions: 'revokeUserSessions',
  authRequest: 'auth',
  listRevocations: 'revocations',
  adminListSessions: 'listSessions',
  adminRevokeSessions: 'revokeMatching',
  adminListEvents: 'listEvents',
  adminStats: 'stats',
  adminPrune: 'prune',
  healthz: 'health',
  readyz: 'ready',
  metrics: 'metrics',
  openapi: 'openapi',
}

t.test('every operation of openapi.yaml has a client method', async (t) => {
  const operationIds: string[] = []
  for (const item of Object.values(spec.paths as Record<string, Json>)) {
    for (const operation of Object.values(item)) {
      const id = (operation as Json | null)?.operationId
      // The operator console's page and sign-in are for its browser pages, not for backends.
      const tags = (operation as Json | null)?.tags
      if (Array.isArray(tags) && tags.includes('console')) continue
      if (typeof id === 'string') operationIds.push(id)
    }
  }
  t.same(operationIds.sort(), Object.keys(METHODS).sort(), 'the table names every operation, and only those')
  for (const [id, method] of Object.entries(METHODS)) t.type(C.SessionServiceClient.prototype[method], 'function', `${id} → client.${method}()`)
})
