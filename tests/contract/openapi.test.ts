// openapi.yaml against the served app: every documented operation is served, every served route is documented,
// /v1 operations carry their scope and auth errors, and GET /openapi.yaml serves the file as it is on disk.
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import type { HTTPMethods } from 'fastify'
import pino from 'pino'
import postgres from 'postgres'
import t from 'tap'
import { parse } from 'yaml'
import { loadConfig } from '../../src/config.js'
import { buildServer } from '../../src/server.js'
import { ROOT } from '../support/process.js'
import { routesOf } from '../support/routes.js'

type Json = Record<string, unknown>
interface Operation {
  method: string
  path: string
  op: Json
}

const specText = await readFile(path.join(ROOT, 'openapi.yaml'), 'utf8')
const spec = parse(specText) as Json

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']

function operations(): Operation[] {
  const found: Operation[] = []
  for (const [specPath, item] of Object.entries(spec.paths as Record<string, Json>)) {
    for (const [key, op] of Object.entries(item)) {
      if (HTTP_METHODS.includes(key)) found.push({ method: key.toUpperCase(), path: specPath, op: op as Json })
    }
  }
  return found
}

// /v1/sessions/{id} -> /v1/sessions/:id
const toFastifyPath = (specPath: string) => specPath.replace(/\{([^}]+)\}/g, ':$1')

// Follows a local "#/components/..." reference; undefined when it points nowhere.
function resolve(ref: string): unknown {
  let node: unknown = spec
  for (const part of ref.replace(/^#\//, '').split('/')) {
    node = node !== null && typeof node === 'object' ? (node as Json)[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined
  }
  return node
}

const deref = (node: Json): Json => (typeof node.$ref === 'string' ? deref(resolve(node.$ref) as Json) : node)

function allRefs(node: unknown, refs: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) allRefs(item, refs)
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') refs.push(value)
      else allRefs(value, refs)
    }
  }
  return refs
}

const app = await buildServer({
  config: loadConfig({ API_KEYS: 'app:' + 'ab'.repeat(16) }),
  sql: postgres('postgres://127.0.0.1:1/none', { max: 1, connect_timeout: 1 }),
  cron: false,
  loggerInstance: pino({ level: 'silent' }),
})
t.teardown(() => app.close())
await app.ready()

const documented = operations()

t.test('the document is OpenAPI 3.1 and every $ref resolves', async (t) => {
  t.match(spec.openapi, /^3\.1\.\d+$/)
  t.ok(documented.length > 0, 'documents operations')
  for (const ref of new Set(allRefs(spec))) {
    t.not(resolve(ref), undefined, `${ref} resolves`)
  }
})

t.test('every documented operation is served', async (t) => {
  for (const { method, path: specPath } of documented) {
    t.ok(app.hasRoute({ method: method as HTTPMethods, url: toFastifyPath(specPath) }), `${method} ${specPath} is served`)
  }
})

t.test('every served route is documented', async (t) => {
  const served = routesOf(app)
    .filter((route) => !route.startsWith('HEAD ') && !route.startsWith('OPTIONS '))
  // Guards the tree parser: a format change must not silently leave nothing to compare.
  t.ok(served.includes('GET /healthz'), 'printRoutes parsed (GET /healthz)')
  t.ok(served.includes('PATCH /v1/sessions/:id'), 'printRoutes parsed (nested PATCH /v1/sessions/:id)')
  const documentedRoutes = new Set(documented.map(({ method, path: specPath }) => `${method} ${toFastifyPath(specPath)}`))
  for (const route of served) t.ok(documentedRoutes.has(route), `${route} is documented`)
  t.equal(new Set(served).size, documentedRoutes.size, 'as many served routes as documented operations')
})

t.test('/v1 operations name their scope and document their auth errors', async (t) => {
  for (const { method, path: specPath, op } of documented.filter((o) => o.path.startsWith('/v1/'))) {
    const name = `${method} ${specPath}`
    const scope = specPath.startsWith('/v1/admin/') ? 'admin' : 'sessions'
    const responses = op.responses as Json
    t.equal(op['x-scope'], scope, `${name} has x-scope ${scope}`)
    t.match(op.description, `Scope: \`${scope}\``, `${name} names its scope in its description`)
    t.notOk('security' in op, `${name} keeps the API key requirement`)
    t.ok('401' in responses, `${name} documents 401`)
    t.ok('503' in responses, `${name} documents 503`)
    if (scope === 'admin') t.ok('403' in responses, `${name} documents 403`)
  }
})

t.test('operations outside /v1 need no API key', async (t) => {
  t.same(spec.security, [{ apiKey: [] }], 'the bearer API key is the default')
  for (const { method, path: specPath, op } of documented.filter((o) => !o.path.startsWith('/v1/'))) {
    t.same(op.security, [], `${method} ${specPath} has security: []`)
  }
})

t.test('request bodies are closed JSON objects with their body errors documented', async (t) => {
  for (const { method, path: specPath, op } of documented.filter((o) => o.op.requestBody !== undefined)) {
    const name = `${method} ${specPath}`
    const content = deref(op.requestBody as Json).content as Json
    t.same(Object.keys(content), ['application/json'], `${name} takes application/json only`)
    const schema = deref((content['application/json'] as Json).schema as Json)
    t.equal(schema.type, 'object', `${name} body is an object`)
    t.equal(schema.additionalProperties, false, `${name} body rejects unknown fields`)
    for (const status of ['400', '413', '415']) t.ok(status in (op.responses as Json), `${name} documents ${status}`)
  }
})

t.test('GET /openapi.yaml serves this file', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/openapi.yaml' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/yaml/)
  t.equal(res.body, specText)
})
