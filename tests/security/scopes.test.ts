// Scope enforcement over every operation in openapi.yaml, and the constant-time key lookup underneath it.
import * as crypto from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { FastifyInstance, InjectOptions } from 'fastify'
import t from 'tap'
import { parse } from 'yaml'
import type { ApiKeyConfig } from '../../src/config.js'
import { ADMIN_KEY, APP_KEY, OTHER_APP_KEY, setup } from '../helpers/app.js'
import { ROOT } from '../support/process.js'

type Scope = 'none' | 'sessions' | 'admin'
interface Operation {
  method: string
  path: string
  scope: Scope
}

// The prose contract lives beside the repository; when it is there, openapi.yaml is checked against its route table.
const CONTRACT = path.join(ROOT, '..', 'shared', 'API.md')
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']

function fromOpenApi(): Operation[] {
  const spec = parse(readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8')) as { paths?: Record<string, Record<string, Record<string, unknown>>> } | null
  const found: Operation[] = []
  for (const [specPath, item] of Object.entries(spec?.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!HTTP_METHODS.includes(method)) continue
      const open = Array.isArray(op.security) && op.security.length === 0
      const scope: Scope = open ? 'none' : op['x-scope'] === 'admin' || specPath.startsWith('/v1/admin/') ? 'admin' : 'sessions'
      found.push({ method: method.toUpperCase(), path: specPath, scope })
    }
  }
  return found
}

// The route table of the contract: "| `METHOD /path?query` | scope | does |".
function fromContract(): Operation[] {
  const found: Operation[] = []
  for (const line of readFileSync(CONTRACT, 'utf8').split('\n')) {
    const match = /^\| `(GET|POST|PATCH|PUT|DELETE) ([^`?]+)(?:\?[^`]*)?` \| (none|sessions|admin) \|/.exec(line)
    if (match !== null) found.push({ method: match[1], path: match[2], scope: match[3] as Scope })
  }
  return found
}

const OPERATIONS = fromOpenApi()
const PROTECTED = OPERATIONS.filter((op) => op.scope !== 'none')
const ADMIN_ONLY = OPERATIONS.filter((op) => op.scope === 'admin')

const errorShape = (code: string) => ({ error: { code, message: String, details: Array } })

t.test('the operation list is complete enough to mean something', async (t) => {
  t.comment(`operations from openapi.yaml: ${OPERATIONS.length}`)
  t.ok(PROTECTED.length >= 15, `at least the contract's 16 /v1 operations (got ${PROTECTED.length})`)
  t.ok(ADMIN_ONLY.length >= 5, `at least the contract's 5 admin operations (got ${ADMIN_ONLY.length})`)
  t.same(OPERATIONS.filter((op) => op.scope === 'none').map((op) => `${op.method} ${op.path}`).sort(),
    ['GET /healthz', 'GET /metrics', 'GET /openapi.yaml', 'GET /readyz',
      // The operator console's page and its own sign-in (its cookie and CSRF checks: tests/console/routes.test.ts).
      'GET /console', 'GET /console/', 'GET /console/{asset}', 'GET /console/api/session', 'POST /console/api/session', 'DELETE /console/api/session'].sort(),
    'exactly the four operational routes and the console\'s page and sign-in are open')
  for (const op of OPERATIONS) {
    t.equal(op.scope === 'admin', op.path.startsWith('/v1/admin/'), `${op.method} ${op.path}: scope ${op.scope} matches its prefix`)
  }
  if (existsSync(CONTRACT)) {
    const listed = new Set(OPERATIONS.map((op) => `${op.method} ${op.path} ${op.scope}`))
    for (const op of fromContract()) t.ok(listed.has(`${op.method} ${op.path} ${op.scope}`), `openapi.yaml has ${op.method} ${op.path} (${op.scope})`)
  } else {
    t.comment('shared/API.md is not beside this checkout: openapi.yaml is not cross-checked against its route table')
  }
})

// A request that succeeds with an authorised key: a fresh session where the operation needs one.
async function sampleRequest(app: FastifyInstance, op: Operation): Promise<InjectOptions> {
  const issue = async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: `Bearer ${APP_KEY}` }, payload: { userId: 'scope-owner' } })
    return res.json() as { token: string; session: { id: string } }
  }
  const needsSession = op.path.includes('{id}') || ['validate', 'touch', 'rotate', 'revoke'].some((verb) => op.path.endsWith(`/${verb}`)) || op.path === '/v1/auth'
  const issued = needsSession ? await issue() : undefined
  const url = op.path.replace('{id}', issued?.session.id ?? 's_01ARZ3NDEKTSV4RRFFQ69G5FAV').replace('{userId}', 'scope-user')
  const key = `${op.method} ${op.path}`
  switch (key) {
    case 'POST /v1/sessions': return { method: 'POST', url, payload: { userId: 'scope-user' } }
    case 'PATCH /v1/sessions/{id}': return { method: 'PATCH', url, payload: { data: { seen: true } } }
    case 'GET /v1/auth': return { method: 'GET', url, headers: { 'x-session-token': issued!.token } }
    // A filter that matches nothing: mass revocation must not touch the other tests' sessions.
    case 'DELETE /v1/admin/sessions': return { method: 'DELETE', url: `${url}?userId=nobody-at-all` }
  }
  if (op.method === 'POST' && issued !== undefined) return { method: 'POST', url, payload: { token: issued.token } }
  return { method: op.method as InjectOptions['method'], url }
}

function send(app: FastifyInstance, request: InjectOptions, authorization: string | undefined) {
  const headers = { ...(request.headers ?? {}) } as Record<string, string>
  if (authorization !== undefined) headers.authorization = authorization
  return app.inject({ ...request, headers })
}

t.test('scopes over every operation', async (t) => {
  const { app, sql } = await setup(t)
  const counts = async () => {
    const [row] = await sql`select
      (select count(*)::int from sessions) as sessions,
      (select count(*)::int from sessions where revoked_at is not null) as revoked,
      (select count(*)::int from audit_events) as events`
    return row
  }

  t.test('without a valid key every /v1 operation is 401 invalid_api_key and does nothing', async (t) => {
    const bad: Array<[string, string | undefined]> = [
      ['no Authorization header', undefined],
      ['Basic scheme', 'Basic x'],
      ['Bearer with an empty secret', 'Bearer '],
      ['Bearer without a secret', 'Bearer'],
      ['another scheme with a real key', `Token ${APP_KEY}`],
      ['an unknown secret', 'Bearer wrong-secret-0123456789abcdef'],
      ['a real key wrong at the last byte', `Bearer ${APP_KEY.slice(0, -1)}X`],
      ['a real key wrong at the first byte', `Bearer X${APP_KEY.slice(1)}`],
      ['a real key with a suffix', `Bearer ${APP_KEY}x`],
    ]
    for (const op of PROTECTED) {
      const request = await sampleRequest(app, op)
      const before = await counts()
      for (const [what, authorization] of bad) {
        const res = await send(app, request, authorization)
        t.equal(res.statusCode, 401, `${op.method} ${op.path}, ${what}: 401`)
        t.match(res.json(), errorShape('invalid_api_key'), `${op.method} ${op.path}, ${what}: invalid_api_key`)
      }
      t.same(await counts(), before, `${op.method} ${op.path}: rejected requests changed nothing`)
    }
  })

  t.test('a sessions key on /v1/admin/* is 403 forbidden and does nothing', async (t) => {
    for (const op of ADMIN_ONLY) {
      for (const key of [APP_KEY, OTHER_APP_KEY]) {
        const request = await sampleRequest(app, op)
        // The most dangerous variant: revoke everything.
        if (op.method === 'DELETE' && op.path === '/v1/admin/sessions') request.url = '/v1/admin/sessions?all=true'
        const before = await counts()
        const res = await send(app, request, `Bearer ${key}`)
        t.equal(res.statusCode, 403, `${op.method} ${op.path}: 403`)
        t.match(res.json(), errorShape('forbidden'), `${op.method} ${op.path}: forbidden`)
        t.same(await counts(), before, `${op.method} ${op.path}: nothing changed`)
      }
    }
  })

  t.test('an admin key works on every /v1 operation', async (t) => {
    for (const op of PROTECTED) {
      const res = await send(app, await sampleRequest(app, op), `Bearer ${ADMIN_KEY}`)
      t.ok(res.statusCode >= 200 && res.statusCode < 300, `${op.method} ${op.path}: ${res.statusCode} ${res.body.slice(0, 200)}`)
    }
  })

  t.test('a sessions key works on every non-admin /v1 operation', async (t) => {
    for (const op of PROTECTED.filter((o) => o.scope === 'sessions')) {
      const res = await send(app, await sampleRequest(app, op), `Bearer ${APP_KEY}`)
      t.ok(res.statusCode >= 200 && res.statusCode < 300, `${op.method} ${op.path}: ${res.statusCode} ${res.body.slice(0, 200)}`)
    }
  })

  t.test('/healthz, /readyz, /metrics and /openapi.yaml need no key, and a bad one does not hurt', async (t) => {
    for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.yaml']) {
      t.equal((await app.inject({ method: 'GET', url })).statusCode, 200, `${url} without a key`)
      t.equal((await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer nope' } })).statusCode, 200, `${url} with a bad key`)
    }
  })
})

t.test('createKeyRing compares SHA-256 digests with timingSafeEqual against every key', async (t) => {
  const calls: Array<[Buffer, Buffer]> = []
  const spy = (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
    calls.push([Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)])
    return crypto.timingSafeEqual(a, b)
  }
  const { createKeyRing } = await t.mockImport<typeof import('../../src/auth/api-keys.js')>('../../src/auth/api-keys.js', {
    'node:crypto': { ...crypto, timingSafeEqual: spy },
  })
  const keys: ApiKeyConfig[] = [
    { name: 'first', secret: 'first-secret-0123456789abcdef', scope: 'sessions' },
    { name: 'second', secret: 'second-secret-0123456789abcdef', scope: 'sessions' },
    { name: 'ops', secret: 'ops-secret-0123456789abcdef-longer', scope: 'admin' },
  ]
  const ring = createKeyRing(keys)
  const sha = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest()
  const cases: Array<[string, string, string | undefined]> = [
    ['a match at the first key', keys[0].secret, 'first'],
    ['a match at the last key', keys[2].secret, 'ops'],
    ['no match', 'unknown-secret-0123456789abcdef', undefined],
    ['wrong at byte 0', `X${keys[0].secret.slice(1)}`, undefined],
    ['wrong at the last byte', `${keys[0].secret.slice(0, -1)}X`, undefined],
    ['a one-character secret', 'x', undefined],
    ['a 512-character secret', 'y'.repeat(512), undefined],
  ]
  for (const [what, secret, expected] of cases) {
    calls.length = 0
    const found = ring.find(secret)
    t.equal(found?.name, expected, `${what}: finds ${expected ?? 'nothing'}`)
    t.equal(calls.length, keys.length, `${what}: timingSafeEqual runs once per key (${calls.length})`)
    t.ok(calls.every(([a, b]) => a.length === 32 && b.length === 32), `${what}: always two 32-byte digests`)
    t.ok(calls.every(([a]) => a.equals(sha(secret))), `${what}: the presented side is SHA-256 of the secret`)
    t.same(calls.map(([, b]) => b.toString('hex')).sort(), keys.map((k) => sha(k.secret).toString('hex')).sort(), `${what}: every configured digest is compared`)
  }
  t.same(ring.find(keys[2].secret), { name: 'ops', scope: 'admin' }, 'the result carries name and scope, never the secret')
})
