// Hostile and oversized input: body limits, media types, broken and poisoned JSON, deep nesting; errors stay clean and change nothing.
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { call, setup } from '../helpers/app.js'
import { ROOT } from '../support/process.js'

const BODY_LIMIT = 65_536
const ERROR_CODES = ['invalid_request', 'invalid_api_key', 'session_invalid', 'forbidden', 'not_found', 'session_limit',
  'version_conflict', 'payload_too_large', 'unsupported_media_type', 'unavailable', 'internal_error']
// The checkout's own path is one of the things an error body must never show.
const LEAKS = ['postgres', 'SELECT', '    at ', ROOT, 'node_modules']

// A JSON body of exactly `bytes` bytes: the object, then spaces (insignificant whitespace).
function padded(value: unknown, bytes: number): string {
  const json = JSON.stringify(value)
  return json + ' '.repeat(bytes - Buffer.byteLength(json))
}

t.test('hostile input', async (t) => {
  const { app, sql } = await setup(t)
  const created = await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'input-user' } })
  t.equal(created.statusCode, 201)
  const { token, session } = created.json() as { token: string; session: { id: string } }
  const errors: Array<{ what: string; res: LightMyRequestResponse }> = []

  const counts = async () => {
    const [row] = await sql`select
      (select count(*)::int from sessions) as sessions,
      (select count(*)::int from audit_events) as events,
      (select max(version) from sessions) as version`
    return row
  }
  const post = (url: string, body: string, contentType = 'application/json') =>
    call(app, { method: 'POST', url, payload: body, headers: { 'content-type': contentType } })
  const patch = (body: string) =>
    call(app, { method: 'PATCH', url: `/v1/sessions/${session.id}`, payload: body, headers: { 'content-type': 'application/json' } })

  function rejected(t: Test, what: string, res: LightMyRequestResponse, status: number | '4xx', code?: string) {
    errors.push({ what, res })
    if (status === '4xx') t.ok(res.statusCode >= 400 && res.statusCode < 500, `${what}: 4xx (got ${res.statusCode})`)
    else t.equal(res.statusCode, status, `${what}: ${status} (got ${res.statusCode} ${res.body.slice(0, 200)})`)
    if (code !== undefined) t.equal(res.json().error?.code, code, `${what}: ${code}`)
  }

  t.test('body limit: 65,536 bytes pass the parser, 65,537 are 413 payload_too_large', async (t) => {
    const atLimit = padded({ userId: 'limit-user' }, BODY_LIMIT)
    t.equal(Buffer.byteLength(atLimit), BODY_LIMIT)
    const before = await counts()
    const res = await post('/v1/sessions', atLimit)
    t.not(res.statusCode, 413, '65,536 bytes are within the limit')
    t.equal(res.statusCode, 201, `and (being valid JSON) create the session: ${res.body.slice(0, 200)}`)
    t.equal((await counts()).sessions, before.sessions + 1)

    const overBefore = await counts()
    rejected(t, '65,537 bytes', await post('/v1/sessions', padded({ userId: 'limit-user' }, BODY_LIMIT + 1)), 413, 'payload_too_large')
    rejected(t, '65,537 bytes to validate', await post('/v1/sessions/validate', padded({ token }, BODY_LIMIT + 1)), 413, 'payload_too_large')
    t.same(await counts(), overBefore, 'nothing changed')
  })

  t.test('session data: 16 KiB of JSON pass, one byte more is 413', async (t) => {
    const data = (n: number) => ({ p: 'x'.repeat(n - Buffer.byteLength(JSON.stringify({ p: '' }))) })
    t.equal(Buffer.byteLength(JSON.stringify(data(16384))), 16384)
    t.equal((await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'data-user', data: data(16384) } })).statusCode, 201, '16,384 bytes of data')
    const before = await counts()
    rejected(t, '16,385 bytes of data', await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'data-user', data: data(16385) } }), 413, 'payload_too_large')
    rejected(t, 'patch to 16,385 bytes of data', await call(app, { method: 'PATCH', url: `/v1/sessions/${session.id}`, payload: { data: data(16385) } }), 413, 'payload_too_large')
    t.same(await counts(), before, 'nothing changed')
  })

  t.test('rejected requests change nothing', async (t) => {
    const before = await counts()

    t.test('a body that is not JSON: 415 unsupported_media_type', async (t) => {
      rejected(t, 'text/plain', await post('/v1/sessions', JSON.stringify({ userId: 'mt' }), 'text/plain'), 415, 'unsupported_media_type')
      rejected(t, 'form encoded', await post('/v1/sessions', 'userId=mt', 'application/x-www-form-urlencoded'), 415, 'unsupported_media_type')
      rejected(t, 'text/plain to validate', await post('/v1/sessions/validate', JSON.stringify({ token }), 'text/plain'), 415, 'unsupported_media_type')
    })

    t.test('broken JSON: 400 invalid_request', async (t) => {
      const broken = ['{"userId": "42"', '{userId: 42}', "{'userId': '42'}", '{"userId": "42",}', `{"token": "${token}"`, 'nul', '{"a":1}}']
      for (const body of broken) rejected(t, `broken JSON ${body.slice(0, 20)}`, await post('/v1/sessions', body), 400, 'invalid_request')
      rejected(t, 'broken JSON with a token to validate', await post('/v1/sessions/validate', `{"token":"${token}",`), 400, 'invalid_request')
      rejected(t, 'empty JSON body', await post('/v1/sessions', ''), 400, 'invalid_request')
    })

    t.test('prototype poisoning: 400', async (t) => {
      const poisoned: Record<string, string> = {
        '{"__proto__":{}}': '{"__proto__":{}}',
        '{"constructor":{"prototype":{}}}': '{"constructor":{"prototype":{}}}',
        '__proto__ with userId': '{"userId":"42","__proto__":{"isAdmin":true}}',
        '__proto__ inside data': '{"userId":"42","data":{"__proto__":{"isAdmin":true}}}',
        'constructor.prototype inside data': '{"userId":"42","data":{"a":{"constructor":{"prototype":{"isAdmin":true}}}}}',
      }
      for (const [what, body] of Object.entries(poisoned)) {
        rejected(t, `create, ${what}`, await post('/v1/sessions', body), 400, 'invalid_request')
      }
      rejected(t, 'patch, __proto__ inside data', await patch('{"data":{"__proto__":{"isAdmin":true}}}'), 400, 'invalid_request')
      rejected(t, 'patch, constructor.prototype', await patch('{"data":{"constructor":{"prototype":{"isAdmin":true}}}}'), 400, 'invalid_request')
      t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype is untouched')
    })

    t.test('JSON nested 30,000 deep: 4xx, and the app still answers', async (t) => {
      const deep = (n: number) => '['.repeat(n) + ']'.repeat(n)
      const inData = `{"userId":"deep","data":{"a":${deep(30_000)}}}`
      t.ok(Buffer.byteLength(inData) < BODY_LIMIT, `within the body limit (${Buffer.byteLength(inData)} bytes)`)
      rejected(t, 'create with data nested 30,000 deep', await post('/v1/sessions', inData), '4xx')
      rejected(t, 'patch with data nested 30,000 deep', await patch(`{"data":{"a":${deep(30_000)}}}`), '4xx')
      rejected(t, 'a top-level array nested 30,000 deep', await post('/v1/sessions', deep(32_000)), '4xx')
      const objects = '{"a":'.repeat(12_000) + '1' + '}'.repeat(12_000)
      rejected(t, 'objects nested 12,000 deep in data', await post('/v1/sessions', `{"userId":"deep","data":${objects}}`), '4xx')
      t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, '/healthz still answers')
      const after = await call(app, { method: 'POST', url: '/v1/sessions/validate', payload: { token } })
      t.equal(after.statusCode, 200, 'and so does validate')
    })

    t.test('tokens and unknown fields never come back in an error', async (t) => {
      rejected(t, 'unknown field holding a token', await call(app, { method: 'POST', url: '/v1/sessions/validate', payload: { token, copy: token } }), 400, 'invalid_request')
      rejected(t, 'a client-chosen token on create', await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'x', token } }), 400, 'invalid_request')
      rejected(t, 'token of the wrong type', await call(app, { method: 'POST', url: '/v1/sessions/validate', payload: { token: [token] } }), 400, 'invalid_request')
    })

    t.test('row counts of sessions and audit_events are unchanged', async (t) => {
      t.same(await counts(), before)
    })
  })

  t.test('every error body has the contract shape and leaks nothing', async (t) => {
    t.ok(errors.length >= 25, `${errors.length} error responses collected`)
    for (const { what, res } of errors) {
      let body: unknown
      try {
        body = res.json()
      } catch {
        body = undefined
      }
      t.match(res.headers['content-type'], /^application\/json/, `${what}: JSON`)
      t.same(Object.keys((body ?? {}) as object), ['error'], `${what}: only "error" at the top`)
      const error = (body as { error?: Record<string, unknown> } | undefined)?.error ?? {}
      t.ok(ERROR_CODES.includes(error.code as string), `${what}: a contract code (${String(error.code)})`)
      t.type(error.message, 'string', `${what}: a message`)
      t.ok(Array.isArray(error.details), `${what}: details is an array`)
      const found = [...LEAKS, token].filter((leak) => res.body.includes(leak))
      t.same(found, [], `${what}: no internals or token in the body`)
    }
  })
})
