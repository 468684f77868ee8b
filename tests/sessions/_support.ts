// Shared assertions and database reads for the session contract tests (API.md is the source of truth).
import { createHash } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { parseSetCookie, type Cookie } from 'set-cookie-parser'
import pino from 'pino'
import { loadConfig } from '../../src/config.js'
import { connect, type Sql } from '../../src/db.js'
import { buildServer } from '../../src/server.js'
import { BASE_ENV, call, type TestApp } from '../helpers/app.js'
import { POOL } from '../helpers/db.js'
import type { EventRow } from '../../src/audit/store.js'
import type { Session } from '@session-service/client'

type Assert = Pick<Test, 'equal' | 'match' | 'ok'>

export const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/
export const SESSION_ID_FORMAT = /^s_[0-9A-HJKMNP-TV-Z]{26}$/
export const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/
// A well-formed id that no session has: s_ and 26 Crockford base32 characters.
export const UNKNOWN_SESSION_ID = 's_01ARZ3NDEKTSV4RRFFQ69G5FAV'

export const SESSION_FIELDS = ['id', 'userId', 'policy', 'data', 'version', 'createdAt', 'lastSeenAt', 'idleExpiresAt', 'expiresAt', 'ip', 'userAgent'] as const

// A second app with other settings on the same (already migrated) database: cheaper than a fresh database per setting.
export async function reconfigure(t: Pick<Test, 'teardown'>, base: TestApp, env: Record<string, string>): Promise<TestApp> {
  const config = loadConfig({ ...BASE_ENV, ...env, DATABASE_URL: base.url })
  const app = await buildServer({ config, sql: connect(base.url, POOL), cron: false, loggerInstance: pino({ level: 'silent' }) })
  await app.ready()
  t.teardown(() => app.close())
  return { app, sql: base.sql, config, url: base.url }
}

// The wire shape is the contract's, defined once in packages/client/src/types.ts.
export type SessionJson = Session

export interface Issued {
  token: string
  session: SessionJson
  setCookie: string
}

// contract: every error is { error: { code, message, details, ...extra } } with the given status.
export function assertError(t: Assert, res: LightMyRequestResponse, status: number, code: string, extra: Record<string, unknown> = {}): void {
  t.equal(res.statusCode, status, `status ${status} (body ${res.body.slice(0, 300)})`)
  let body: { error?: { code?: unknown; message?: unknown; details?: unknown } } = {}
  try {
    body = res.json()
  } catch {
    t.ok(false, `error body is JSON: ${res.body.slice(0, 200)}`)
    return
  }
  t.match(body, { error: { code, message: String, details: Array, ...extra } }, `error shape ${code}`)
}

export function assertSessionInvalid(t: Assert, res: LightMyRequestResponse, reason: string, revokeReason?: string): void {
  assertError(t, res, 401, 'session_invalid', revokeReason === undefined ? { reason } : { reason, revokeReason })
}

export const seconds = (iso: string) => Date.parse(iso) / 1000

export async function create(app: FastifyInstance, body: Record<string, unknown>, key?: string): Promise<LightMyRequestResponse> {
  return call(app, { method: 'POST', url: '/v1/sessions', payload: body, ...(key === undefined ? {} : { key }) })
}

export async function issue(app: FastifyInstance, body: Record<string, unknown>, key?: string): Promise<Issued> {
  const res = await create(app, body, key)
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  return res.json() as Issued
}

export const getById = (app: FastifyInstance, id: string) => call(app, { method: 'GET', url: `/v1/sessions/${id}` })

export const patch = (app: FastifyInstance, id: string, data: unknown, ifMatch?: string) =>
  call(app, {
    method: 'PATCH',
    url: `/v1/sessions/${id}`,
    payload: { data },
    ...(ifMatch === undefined ? {} : { headers: { 'if-match': ifMatch } }),
  })

export interface Row {
  id: string
  user_id: string
  policy: string
  data: Record<string, unknown>
  version: number
  last_seen_at: Date
  revoked_at: Date | null
  revoke_reason: string | null
  ip: string | null
  user_agent: string | null
  // microsecond-exact text forms, so "did not move" is not blurred by millisecond Dates
  last_seen_text: string
}

export async function row(sql: Sql, id: string): Promise<Row | undefined> {
  const [found] = await sql<Row[]>`select *, last_seen_at::text as last_seen_text from sessions where id = ${id}`
  return found
}


export async function events(sql: Sql, sessionId: string): Promise<EventRow[]> {
  return sql<EventRow[]>`select * from audit_events where session_id = ${sessionId} order by id`
}

export async function eventCount(sql: Sql): Promise<number> {
  const [{ count }] = await sql<{ count: number }[]>`select count(*)::int as count from audit_events`
  return count
}

// Moves only the last activity back (creation and the absolute deadline stay), as if the client had been quiet that long.
export async function ageLastSeen(sql: Sql, id: string, secondsBack: number): Promise<void> {
  await sql`
    update sessions set
      last_seen_at = last_seen_at - make_interval(secs => ${secondsBack}),
      idle_expires_at = idle_expires_at - make_interval(secs => ${secondsBack})
    where id = ${id}`
}

export const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest()

export function parseCookie(header: string | string[] | undefined): Cookie {
  const [cookie] = parseSetCookie(header === undefined ? [] : header, { decodeValues: false })
  if (cookie === undefined) throw new Error(`no Set-Cookie in ${String(header)}`)
  return cookie
}

// The attribute names as written, lower-cased, to tell "absent" from "present but empty".
export function attributeNames(header: string): string[] {
  return header.split(';').slice(1).map((part) => part.split('=')[0].trim().toLowerCase())
}

// JSON object { s: "..." } whose JSON.stringify is exactly `bytes` UTF-8 bytes, built mostly from 3- and 4-byte characters.
export function dataOfBytes(bytes: number): { s: string } {
  const overhead = Buffer.byteLength(JSON.stringify({ s: '' }), 'utf8')
  const emoji = 2000 // 4 bytes each, 2 UTF-16 units
  const euro = 2000 // 3 bytes each, 1 UTF-16 unit
  const ascii = bytes - overhead - emoji * 4 - euro * 3
  if (ascii < 0) throw new Error(`cannot build ${bytes} bytes`)
  return { s: '\u{1F600}'.repeat(emoji) + '\u20AC'.repeat(euro) + 'a'.repeat(ascii) }
}
