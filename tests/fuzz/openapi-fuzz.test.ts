// Property-based fuzzing from openapi.yaml: requests built from every operation's parameters and body schema, then
// mutated (wrong types, missing and extra fields, huge and hostile strings, deep nesting, bad JSON, wrong media types,
// huge headers, path traversal in ids). Never a 5xx; the status is one the operation documents; every error has the
// contract's shape and leaks nothing; a rejected request changes no row. In-process (inject), one app, one database.
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'
import fc from 'fast-check'
import t from 'tap'
import { parse } from 'yaml'
import { ADMIN_KEY, APP_KEY, setup } from '../helpers/app.js'
import { ROOT } from '../support/process.js'

const addFormats = (addFormatsModule as unknown as { default: (ajv: Ajv, formats: string[]) => Ajv }).default
const TOTAL_CASES = Number(process.env.FUZZ_CASES ?? 10_000)
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31)
// Every wait the fuzz sends is 0 or invalid, and every database bound is a few seconds: an answer takes far less than this.
const ANSWER_WITHIN_MS = 20_000
// The checkout's own path is one of the things an error body must never show.
const LEAKS = [/ {4}at /, /node_modules/, new RegExp(ROOT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), /\.ts:\d/, /\.js:\d/, /postgres/i, /\bselect\b.*\bfrom\b/i, /\binsert into\b/i, /syntax error/i, /sqlstate/i]

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Schema = Record<string, any>

// ---------------------------------------------------------------- the document

const spec = parse(await readFile(path.join(ROOT, 'openapi.yaml'), 'utf8')) as Schema

// Inlines every local $ref (the document has no cycles).
function deref(node: unknown): any {
  if (Array.isArray(node)) return node.map(deref)
  if (node === null || typeof node !== 'object') return node
  const ref = (node as { $ref?: string }).$ref
  if (typeof ref === 'string') {
    const target = ref.replace(/^#\//, '').split('/').reduce((at: any, key) => at[key], spec)
    const { $ref: _ignored, ...rest } = node as Record<string, unknown>
    return { ...deref(target), ...deref(rest) }
  }
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, deref(value)]))
}

interface Param { name: string; in: 'path' | 'query' | 'header' | 'cookie'; required: boolean; schema: Schema }
interface Operation {
  id: string
  method: string
  template: string
  params: Param[]
  body: Schema | undefined
  statuses: Set<number>
  responses: Record<string, Schema>
  admin: boolean
}

const operations: Operation[] = []
for (const [template, item] of Object.entries(spec.paths as Record<string, Schema>)) {
  for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
    const op = item[method]
    if (op === undefined) continue
    const params = deref([...(item.parameters ?? []), ...(op.parameters ?? [])]) as Param[]
    const responses = deref(op.responses) as Record<string, Schema>
    operations.push({
      id: op.operationId,
      method: method.toUpperCase(),
      template,
      params: params.map((p) => ({ ...p, required: p.required === true })),
      body: op.requestBody ? deref(op.requestBody).content['application/json'].schema : undefined,
      statuses: new Set(Object.keys(responses).map(Number)),
      responses,
      admin: op['x-scope'] === 'admin',
    })
  }
}

const ajv = new Ajv({ strict: false, allErrors: false })
addFormats(ajv, ['date-time', 'date'])
const errorBody = ajv.compile(deref(spec.components.schemas.ErrorBody))
const responseValidators = new Map<string, ReturnType<typeof ajv.compile>>()
for (const op of operations) {
  for (const [status, response] of Object.entries(op.responses)) {
    const schema = response.content?.['application/json']?.schema
    if (schema !== undefined && status.startsWith('2')) responseValidators.set(`${op.id} ${status}`, ajv.compile(schema))
  }
}

// ---------------------------------------------------------------- values

// Values that must come from the service's own state are drawn as references and resolved when the request is sent.
type PoolName = 'activeToken' | 'revokedToken' | 'rotatedToken' | 'activeId' | 'revokedId' | 'userId' | 'cursor'
interface PoolRef { $pool: PoolName; i: number }
const ref = (pool: PoolName) => fc.nat().map((i): PoolRef => ({ $pool: pool, i }))

const hostile = fc.constantFrom(
  '', ' ', 'a'.repeat(256), 'a'.repeat(257), 'é'.repeat(256), 'é'.repeat(257), '\u0000', 'a\u0000b', '\u0007', '\u001f', '\u007f',
  '\uD800', 'x\uDC00y', '\uFEFF', '\u202Eevil', '..%2F..%2Fetc%2Fpasswd', '../../etc/passwd', '..\\..\\windows\\win.ini', '%00', '%', '%zz',
  '%252e%252e%252f', '....//....//', '\r\nSet-Cookie: pwned=1', '<script>alert(1)</script>', "' OR '1'='1", '"; drop table sessions; --',
  '${jndi:ldap://127.0.0.1/a}', '{{7*7}}', '__proto__', 'constructor', '🙂'.repeat(64), '𝔘'.repeat(200), 'null', 'true', '-1', '1e309', 'NaN',
  's_01ARZ3NDEKTSV4RRFFQ69G5FAV', 's_' + '0'.repeat(26), 'x'.repeat(4097),
)
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 3, arbitrary: hostile },
  { weight: 1, arbitrary: fc.nat({ max: 3000 }).map((n) => 'x'.repeat(n)) },
)
const wrongType = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }))
const randomToken = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('base64url'))
const token = fc.oneof(
  { weight: 4, arbitrary: ref('activeToken') },
  { weight: 1, arbitrary: ref('revokedToken') },
  { weight: 1, arbitrary: ref('rotatedToken') },
  { weight: 2, arbitrary: randomToken },
  { weight: 2, arbitrary: text },
)
const sessionId = fc.oneof(
  { weight: 4, arbitrary: ref('activeId') },
  { weight: 1, arbitrary: ref('revokedId') },
  { weight: 1, arbitrary: fc.stringMatching(/^s_[0-9A-HJKMNP-TV-Z]{26}$/) },
  { weight: 2, arbitrary: text },
)
const userId = fc.oneof({ weight: 3, arbitrary: ref('userId') }, { weight: 2, arbitrary: text })
const deep = (depth: number): Json => (depth === 0 ? 1 : { d: deep(depth - 1) })
const data = fc.oneof(
  { weight: 6, arbitrary: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>, { maxKeys: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom<Json>(deep(31), deep(32), deep(33), deep(200), { a: 'x'.repeat(16_370) }, { a: 'x'.repeat(16_400) },
    { 'k\u0000': 1 }, { k: 'a\u0000b' }, { k: '\uD800' }, { '\uDC00': 1 }, { list: Array.from({ length: 2000 }, (_, i) => i) }, { n: null }, { lang: null, tz: 'Asia/Dubai' }) },
)

// Boundary values: what a number, a time or a cursor can be that passes a schema's type check and still breaks a layer below
// (JavaScript, the driver, Postgres). Query strings are coerced, so these are sent as text.
const boundaryNumber = fc.constantFrom<unknown>('Infinity', '-Infinity', 'NaN', '-0', '0', '1e309', '-1e309', '1e3', '1.0', '0x10', ' 5', '5 ',
  '9007199254740993', '9223372036854775807', '9223372036854775808', '9'.repeat(19), '9'.repeat(30), '-9223372036854775809', '1e-7', '')
const boundaryDateTime = fc.constantFrom(
  '2016-12-31T23:59:60Z', '1990-12-31T23:59:60Z', '2016-12-31T23:59:60.5Z', '2016-12-31T15:59:60-08:00', // leap seconds
  '0000-01-01T00:00:00Z', '0001-01-01T00:00:00Z', '0001-01-01T00:00:00+01:00', '0001-01-01T00:00:00-01:00', // year 0 and 1
  '9999-12-31T23:59:59Z', '9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59-01:00', '9999-12-31T23:59:59+14:00', '10000-01-01T00:00:00Z', // year 9999 and 10000
  '2020-01-01T00:00:00+14:00', '2020-01-01T00:00:00-12:00', '2020-01-01T00:00:00+23:59', '2020-01-01T00:00:00-23:59', '2020-01-01T00:00:00+24:00', // offsets
  '2020-01-01t00:00:00z', '2020-01-01 00:00:00Z', '2020-01-01T00:00:00', '2020-01-01T00:00:00.123456789012345Z', '2020-02-30T00:00:00Z', '2019-02-29T00:00:00Z',
  '2020-01-01T24:00:00Z', '1970-01-01T00:00:00Z', '1969-12-31T23:59:59.999Z', '+002020-01-01T00:00:00Z', '2020-01-01T00:00:00+0100',
)
const boundaryCursorKey = fc.constantFrom('e:9223372036854775807', 'e:9223372036854775808', 'e:9999999999999999999', 'e:99999999999999999999', 'e:0', 'e:-1', 'e:01',
  'e:1e3', 'e:', 's:', 's:s_ZZZZZZZZZZZZZZZZZZZZZZZZZZ', 's:s_' + '0'.repeat(26), 's:' + 'x'.repeat(300), 'e:1\u0000', 'x:1')
const boundaryCursor = fc.oneof(boundaryCursorKey.map((key) => Buffer.from(key, 'utf8').toString('base64url')), boundaryCursorKey)
const boundarySince = fc.constantFrom('0', '1', '9223372036854775807', '9223372036854775808', '9999999999999999999', '18446744073709551616', '-1', '00', '1e3')

// A value for a schema, with a name that may call for one of the service's own values.
function valueFor(name: string, schema: Schema): fc.Arbitrary<unknown> {
  if (name === 'token' || name === 'X-Session-Token' || name === 'sid') return token
  if (name === 'id' || name === 'except' || name === 'sessionId') return sessionId
  if (name === 'userId') return userId
  // A valid wait would hold this sequential fuzz for seconds: only 0 or invalid values.
  if (name === 'wait') return fc.constantFrom<unknown>(0, '0', '-0', -1, 31, 'soon', '1.5', '', 'Infinity', '-Infinity', 'NaN', '1e309', '-1e309', '9'.repeat(30), '9223372036854775808')
  if (schema.format === 'date-time') {
    return fc.oneof(
      { weight: 3, arbitrary: fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()) },
      { weight: 2, arbitrary: boundaryDateTime },
      { weight: 1, arbitrary: text },
    )
  }
  if (name === 'cursor') return fc.oneof(ref('cursor'), text, fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), fc.nat().map(String), boundaryCursor)
  if (name === 'since') return fc.oneof(ref('cursor'), text, fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), fc.nat().map(String), boundarySince)
  if (name === 'data') return data
  if (name === 'policy') return fc.oneof({ weight: 3, arbitrary: fc.constantFrom('default', 'tight') }, { weight: 1, arbitrary: text })
  if (schema.enum) return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...schema.enum) }, { weight: 1, arbitrary: text })
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'boolean': return fc.oneof({ weight: 3, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom('yes', 'TRUE', '1', 'maybe') })
    case 'integer': return fc.oneof(
      { weight: 3, arbitrary: fc.integer({ min: schema.minimum ?? 0, max: Math.min(schema.maximum ?? 1000, 1000) }) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>(-1, 0, (schema.minimum ?? 0) - 1, schema.maximum ?? 1000, (schema.maximum ?? 1000) + 1, 2 ** 53, '1.5', 'abc', '1e3', '') },
      { weight: 1, arbitrary: boundaryNumber },
    )
    case 'object': return data
    case 'string': return text
    default: return text
  }
}

// ---------------------------------------------------------------- requests

const BODY_MUTATIONS = ['drop-required', 'extra-field', 'wrong-type', 'not-an-object', 'bad-json', 'empty', 'huge', 'deep-json', 'proto',
  'text/plain', 'form', 'multipart', 'xml', 'json-utf16', 'no-content-type'] as const
const OTHER_MUTATIONS = ['unknown-query', 'repeat-query', 'wrong-query', 'huge-header', 'if-match', 'session-header', 'cookie', 'raw-traversal', 'body-on-bodyless'] as const
type Mutation = typeof BODY_MUTATIONS[number] | typeof OTHER_MUTATIONS[number]

interface Draft {
  params: Record<string, unknown>
  body: Record<string, unknown> | undefined
  mutation: Mutation | null
  pick: number
  junk: unknown
  junkKey: string
}

function draftFor(op: Operation): fc.Arbitrary<Draft> {
  const params: Record<string, fc.Arbitrary<unknown>> = {}
  for (const p of op.params) {
    const value = valueFor(p.name, p.schema)
    // wait is always sent: left out, it defaults to a 25 s long-poll.
    params[`${p.in}:${p.name}`] = p.required || p.name === 'wait' ? value : fc.option(value, { nil: undefined, freq: 2 })
  }
  let body: fc.Arbitrary<Record<string, unknown> | undefined> = fc.constant(undefined)
  if (op.body !== undefined) {
    const fields: Record<string, fc.Arbitrary<unknown>> = {}
    for (const [name, schema] of Object.entries(op.body.properties ?? {}) as Array<[string, Schema]>) {
      const value = valueFor(name, schema)
      fields[name] = (op.body.required ?? []).includes(name) ? value : fc.option(value, { nil: undefined, freq: 2 })
    }
    body = fc.record(fields) as fc.Arbitrary<Record<string, unknown>>
  }
  const mutations = [...(op.body ? BODY_MUTATIONS : []), ...OTHER_MUTATIONS]
  return fc.record({
    params: fc.record(params),
    body,
    // About half the requests are well-formed (as far as random values go), half mutated.
    mutation: fc.oneof({ weight: 5, arbitrary: fc.constant(null) }, { weight: 5, arbitrary: fc.constantFrom(...mutations) }),
    pick: fc.nat(),
    junk: wrongType,
    junkKey: fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('token', 'id', 'version', 'tokenHash', 'isAdmin', 'user_id', 'excpet', 'isAdministrator', 'userIdentifier')),
  })
}

// encodeURIComponent refuses lone surrogates; send their UTF-16 code units as (invalid UTF-8) bytes instead.
function encodeSegment(value: string): string {
  try {
    return encodeURIComponent(value)
  } catch {
    return [...value].map((ch) => {
      try { return encodeURIComponent(ch) } catch { return Buffer.from(ch, 'latin1').toString('hex').replace(/../g, '%$&') }
    }).join('')
  }
}

// Header values must be visible Latin-1 to be sent at all; hostile ones become their percent-encoding.
const headerSafe = (value: unknown) => {
  const s = typeof value === 'string' ? value : JSON.stringify(value)
  return /^[\x20-\x7e]*$/.test(s) ? s : encodeSegment(s)
}

interface Built { method: string; url: string; headers: Record<string, string>; payload: string | undefined }

function build(op: Operation, draft: Draft, resolve: (v: unknown) => unknown): Built {
  const params = resolve(draft.params) as Record<string, unknown>
  const headers: Record<string, string> = { authorization: `Bearer ${op.admin || draft.pick % 7 === 0 ? ADMIN_KEY : APP_KEY}` }
  let url = op.template
  const query: string[] = []
  for (const p of op.params) {
    const value = params[`${p.in}:${p.name}`]
    if (value === undefined) continue
    const s = typeof value === 'string' ? value : JSON.stringify(value)
    if (p.in === 'path') url = url.replace(`{${p.name}}`, draft.mutation === 'raw-traversal' ? '..%2F..%2Fetc%2Fpasswd' : encodeSegment(s))
    else if (p.in === 'query') query.push(`${p.name}=${encodeSegment(s)}`)
    else if (p.in === 'header') headers[p.name.toLowerCase()] = headerSafe(s)
    else if (p.in === 'cookie') headers.cookie = `${p.name}=${encodeSegment(s)}`
  }
  switch (draft.mutation) {
    case 'unknown-query': query.push(`${encodeSegment(draft.junkKey)}=${encodeSegment(JSON.stringify(draft.junk) ?? 'x')}`); break
    case 'repeat-query': if (query.length > 0) query.push(query[0], query[0]); else query.push('a=1&a=2'); break
    case 'wrong-query': query.push('limit=abc', 'idleFor=-5', 'all=maybe', 'since=%ZZ', 'createdBefore=yesterday'); break
    case 'huge-header': headers['x-fuzz'] = 'h'.repeat(20_000 + (draft.pick % 20_000)); break
    case 'if-match': headers['if-match'] = ['*', '"1"', 'W/"1"', '"1", "2"', 'garbage', '"', '"'.repeat(70), '"\u00e9"'][draft.pick % 8].replace('\u00e9', '%C3%A9'); break
    case 'session-header': headers['x-session-token'] = headerSafe(resolve({ $pool: 'activeToken', i: draft.pick }) ?? 'x'); break
    case 'cookie': headers.cookie = ['sid=', 'sid=%', 'sid=a;sid=b', `sid=${'c'.repeat(8000)}`, 'sid="quoted"', '=;;=', 'a=b; sid=%E0%A4%A'][draft.pick % 7]; break
    default: break
  }
  if (query.length > 0) url += `?${query.join('&')}`

  let payload: string | undefined
  if (op.body !== undefined) {
    const body: Record<string, unknown> = Object.fromEntries(Object.entries(resolve(draft.body) as Record<string, unknown>).filter(([, v]) => v !== undefined))
    const fields = Object.keys(op.body.properties ?? {})
    headers['content-type'] = 'application/json'
    let json: unknown = body
    switch (draft.mutation) {
      case 'drop-required': delete body[(op.body.required ?? fields)[draft.pick % Math.max(1, (op.body.required ?? fields).length)]]; break
      case 'extra-field': body[draft.junkKey] = draft.junk; break
      case 'wrong-type': if (fields.length > 0) body[fields[draft.pick % fields.length]] = draft.junk; break
      case 'not-an-object': json = [draft.junk, 'x', 1, null, true][draft.pick % 5]; break
      case 'proto': payload = `{"__proto__":{"isAdmin":true},${JSON.stringify(body).slice(1)}`; break
      default: break
    }
    payload ??= JSON.stringify(json)
    switch (draft.mutation) {
      case 'bad-json': payload = [payload.slice(0, -1), `${payload},`, payload.replace(/"/g, "'"), `${payload}}`, '{', 'nul', '\uFEFF' + payload][draft.pick % 7]; break
      case 'empty': payload = ''; break
      case 'huge': payload = JSON.stringify({ ...body, pad: 'p'.repeat(70_000) }); break
      case 'deep-json': payload = `{"data":${'['.repeat(20_000)}${']'.repeat(20_000)}}`; break
      case 'text/plain': headers['content-type'] = 'text/plain'; break
      case 'form': headers['content-type'] = 'application/x-www-form-urlencoded'; payload = 'userId=1&token=2'; break
      case 'multipart': headers['content-type'] = 'multipart/form-data; boundary=x'; payload = '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--'; break
      case 'xml': headers['content-type'] = 'application/xml'; payload = '<a>1</a>'; break
      case 'json-utf16': headers['content-type'] = 'application/json; charset=utf-16'; break
      case 'no-content-type': delete headers['content-type']; break
      default: break
    }
  } else if (draft.mutation === 'body-on-bodyless' && op.method !== 'GET') {
    headers['content-type'] = 'application/json'
    payload = JSON.stringify({ token: 'x', junk: draft.junk })
  }
  return { method: op.method, url, headers, payload }
}

// ---------------------------------------------------------------- the run

// About 35 s alone; on a busy shared machine it may take several times that.
t.setTimeout(300_000)

t.test(`fuzzing every operation of openapi.yaml, ${TOTAL_CASES}+ requests`, async (t) => {
  const { app, sql } = await setup(t, { SESSION_POLICIES: JSON.stringify({ tight: { maxPerUser: 2, onLimit: 'reject' } }) })
  t.comment(`fast-check seed ${SEED} (set FUZZ_SEED to replay); ${operations.length} operations`)

  // The service's own state, for values a client would really send.
  const issued = new Map<string, { token: string; id: string }>() // by token
  const rotated: string[] = []
  const pools: Record<PoolName, string[]> = { activeToken: [], revokedToken: [], rotatedToken: [], activeId: [], revokedId: [], userId: ['42', 'fuzz-user', 'ünï cödé', 'tight-user'], cursor: [] }
  async function refreshPools() {
    const rows = await sql<{ id: string; active: boolean }[]>`select id, revoked_at is null and now() < expires_at and now() < idle_expires_at as active from sessions`
    const active = new Set(rows.filter((r) => r.active).map((r) => r.id))
    pools.activeId = [...active]
    pools.revokedId = rows.filter((r) => !r.active).map((r) => r.id)
    pools.activeToken = [...issued.values()].filter((s) => active.has(s.id)).map((s) => s.token)
    pools.revokedToken = [...issued.values()].filter((s) => !active.has(s.id)).map((s) => s.token)
    pools.rotatedToken = rotated.slice(-200)
  }
  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve)
    if (value !== null && typeof value === 'object') {
      if ('$pool' in value) {
        const { $pool, i } = value as PoolRef
        const pool = pools[$pool]
        return pool.length === 0 ? `empty-${$pool}` : pool[i % pool.length]
      }
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]))
    }
    return value
  }
  for (let i = 0; i < 30; i++) {
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: `Bearer ${APP_KEY}` }, payload: { userId: pools.userId[i % 4], data: { i } } })
    const { token, session } = res.json() as { token: string; session: { id: string } }
    issued.set(token, { token, id: session.id })
  }
  await refreshPools()

  const fingerprint = async () => {
    const [{ fp }] = await sql<{ fp: string }[]>`
      select concat_ws('|',
        (select count(*) || ':' || coalesce(max(xmin::text::bigint), 0) from sessions),
        (select count(*) || ':' || coalesce(max(xmin::text::bigint), 0) from audit_events),
        (select count(*) || ':' || coalesce(max(xmin::text::bigint), 0) from rotated_tokens)) as fp`
    return fp
  }
  let fp = await fingerprint()
  const prof = { inject: 0, fp: 0, refresh: 0 }
  let cases = 0
  let rejected = 0
  const statuses = new Map<string, number>()
  // /metrics and /openapi.yaml answer large bodies and exercise little: fewer runs there, the rest spread over the others.
  const SLOW = new Set(['metrics', 'openapi'])
  const slowRuns = Math.min(120, Math.ceil(TOTAL_CASES / operations.length))
  const slowCount = operations.filter((op) => SLOW.has(op.id)).length
  const runsFor = (op: Operation) => (SLOW.has(op.id) ? slowRuns : Math.ceil((TOTAL_CASES - slowCount * slowRuns) / (operations.length - slowCount)))

  for (const [index, op] of operations.entries()) {
    const property = fc.asyncProperty(draftFor(op), async (draft) => {
      const req = build(op, draft, resolve)
      const i0 = performance.now()
      // A request left waiting is a failure too (a long-poll told to wait Infinity seconds never answered).
      let timer: NodeJS.Timeout | undefined
      const res = await Promise.race([
        app.inject({ method: req.method as 'GET', url: req.url, headers: req.headers, payload: req.payload }),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ANSWER_WITHIN_MS} ms: ${op.id} ${req.method} ${req.url.slice(0, 200)}`)), ANSWER_WITHIN_MS) }),
      ]).finally(() => clearTimeout(timer))
      prof.inject += performance.now() - i0
      cases++
      const what = () => `${op.id} ${req.method} ${req.url.slice(0, 200)} [${draft.mutation ?? 'plain'}] body ${String(req.payload).slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`
      statuses.set(`${res.statusCode}`, (statuses.get(`${res.statusCode}`) ?? 0) + 1)
      if (res.statusCode >= 500) throw new Error(`a ${res.statusCode}: ${what()}`)
      const allowed = new Set(op.statuses)
      // openapi.yaml: a body over 64 KiB is a 413 and one in another media type a 415 on any route a body is sent to.
      if (req.payload !== undefined) for (const status of [400, 413, 415]) allowed.add(status)
      // A path with a "." or ".." segment (a userId of "." sent as is) is normalised by the URL parser into another path: no such route.
      const pathOnly = req.url.split('?')[0]
      if (new URL(pathOnly, 'http://127.0.0.1').pathname !== pathOnly) allowed.add(404)
      if (!allowed.has(res.statusCode)) throw new Error(`status ${res.statusCode} is not documented for ${op.id}: ${what()}`)
      const f0 = performance.now()
      const after = await fingerprint()
      prof.fp += performance.now() - f0
      if (res.statusCode >= 400) {
        rejected++
        if (after !== fp) throw new Error(`a rejected request changed rows (${fp} → ${after}): ${what()}`)
        let body: unknown
        try { body = res.json() } catch { throw new Error(`error body is not JSON: ${what()}`) }
        if (!errorBody(body)) throw new Error(`error body does not match ErrorBody (${ajv.errorsText(errorBody.errors)}): ${what()}`)
        const leak = LEAKS.find((pattern) => pattern.test(res.body))
        if (leak !== undefined) throw new Error(`error body leaks ${leak}: ${what()}`)
        // contract: errors never echo input; an unknown property's name (long enough not to occur by chance) is not named back.
        if ((draft.mutation === 'extra-field' || draft.mutation === 'unknown-query') && draft.junkKey.length >= 8 && res.body.includes(JSON.stringify(draft.junkKey).slice(1, -1))) {
          throw new Error(`error body echoes the unknown property name: ${what()}`)
        }
        const tokens = res.body.match(/[A-Za-z0-9_-]{43}/g) ?? []
        if (tokens.some((candidate) => issued.has(candidate))) throw new Error(`error body contains a token: ${what()}`)
      } else {
        const validator = responseValidators.get(`${op.id} ${res.statusCode}`)
        if (validator !== undefined && !validator(res.json())) throw new Error(`${res.statusCode} body does not match the documented schema (${ajv.errorsText(validator.errors)}): ${what()}`)
        // Learn what the service issued or ended.
        const json = validator === undefined ? undefined : res.json() as { token?: string; session?: { id: string }; nextCursor?: string | null }
        if (json?.token !== undefined && json.session !== undefined) {
          if (op.id === 'rotateSession') {
            const old = (resolve(draft.body) as { token?: unknown }).token
            if (typeof old === 'string') rotated.push(old)
          }
          issued.set(json.token, { token: json.token, id: json.session.id })
        }
        if (typeof json?.nextCursor === 'string') pools.cursor.push(json.nextCursor)
        const r0 = performance.now()
        if (['createSession', 'rotateSession'].includes(op.id) || /revoke/i.test(op.id)) await refreshPools()
        prof.refresh += performance.now() - r0
      }
      fp = after
    })
    const opStarted = Date.now()
    const details = await fc.check(property, { numRuns: runsFor(op), seed: SEED + index, endOnFailure: true })
    t.notOk(details.failed, `${op.id}: ${details.numRuns} requests in ${Date.now() - opStarted} ms${details.failed ? `; failed (seed ${SEED + index}): ${(details.errorInstance as Error | undefined)?.message ?? ''}` : ''}`)
    await refreshPools()
  }

  t.comment(`profile: inject ${Math.round(prof.inject)} ms, fingerprint ${Math.round(prof.fp)} ms, refresh ${Math.round(prof.refresh)} ms`)
  t.ok(cases >= TOTAL_CASES, `${cases} requests generated`)
  t.comment(`openapi fuzz: ${cases} requests over ${operations.length} operations, ${rejected} rejected (4xx) with no row changed; statuses ${[...statuses.entries()].sort().map(([s, n]) => `${s}×${n}`).join(' ')}`)
})
