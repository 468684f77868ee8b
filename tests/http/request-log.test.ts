// One "request completed" line per request: at info, except a successful validation, /v1/auth or probe, which is at debug
// (they come with every request of every app and every few seconds from load balancers). A failed one stays at info.
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { APP_KEY, asKey } from '../helpers/app.js'
import { appWithCapturedLog } from '../helpers/logs.js'

const PINO_LEVEL = { debug: 20, info: 30 } as const

async function exercise(app: Awaited<ReturnType<typeof appWithCapturedLog>>['app']) {
  const created = await app.inject({ method: 'POST', url: '/v1/sessions', headers: asKey(APP_KEY), payload: { userId: 'log-levels' } })
  const { token } = created.json() as { token: string }
  const statuses = {
    create: created.statusCode,
    validate: (await app.inject({ method: 'POST', url: '/v1/sessions/validate', headers: asKey(APP_KEY), payload: { token } })).statusCode,
    auth: (await app.inject({ method: 'GET', url: '/v1/auth', headers: { ...asKey(APP_KEY), 'x-session-token': token } })).statusCode,
    healthz: (await app.inject({ method: 'GET', url: '/healthz' })).statusCode,
    readyz: (await app.inject({ method: 'GET', url: '/readyz' })).statusCode,
    metrics: (await app.inject({ method: 'GET', url: '/metrics' })).statusCode,
    unknownToken: (await app.inject({ method: 'POST', url: '/v1/sessions/validate', headers: asKey(APP_KEY), payload: { token: 'Z'.repeat(43) } })).statusCode,
    authWithout: (await app.inject({ method: 'GET', url: '/v1/auth', headers: asKey(APP_KEY) })).statusCode,
  }
  return statuses
}

function requestLines(lines: Record<string, unknown>[]) {
  return lines.filter((line) => line.msg === 'request completed').map((line) => ({ route: line.route, statusCode: line.statusCode, level: line.level }))
}

t.test('at info: successful validations, /v1/auth and probes leave no request line; failures and changes do', async (t) => {
  const { app, lines } = await appWithCapturedLog(t, 'info')
  t.same(await exercise(app), { create: 201, validate: 200, auth: 200, healthz: 200, readyz: 200, metrics: 200, unknownToken: 401, authWithout: 401 })
  await new Promise((resolve) => setImmediate(resolve))
  t.same(requestLines(lines()), [
    { route: '/v1/sessions', statusCode: 201, level: PINO_LEVEL.info },
    { route: '/v1/sessions/validate', statusCode: 401, level: PINO_LEVEL.info },
    { route: '/v1/auth', statusCode: 401, level: PINO_LEVEL.info },
  ])
})

t.test('at debug: every request has its line, the quiet ones at debug', async (t) => {
  const { app, lines } = await appWithCapturedLog(t, 'debug')
  await exercise(app)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(requestLines(lines()), [
    { route: '/v1/sessions', statusCode: 201, level: PINO_LEVEL.info },
    { route: '/v1/sessions/validate', statusCode: 200, level: PINO_LEVEL.debug },
    { route: '/v1/auth', statusCode: 200, level: PINO_LEVEL.debug },
    { route: '/healthz', statusCode: 200, level: PINO_LEVEL.debug },
    { route: '/readyz', statusCode: 200, level: PINO_LEVEL.debug },
    { route: '/metrics', statusCode: 200, level: PINO_LEVEL.debug },
    { route: '/v1/sessions/validate', statusCode: 401, level: PINO_LEVEL.info },
    { route: '/v1/auth', statusCode: 401, level: PINO_LEVEL.info },
  ])
})

// Requests the framework or Node's parser rejects before any route runs are logged and counted like the others.
t.test('rejected by the framework (bad JSON, 413, 415, bad URL, long parameter, no route, unparsable HTTP): each has its line and its count', async (t) => {
  const { app, lines } = await appWithCapturedLog(t, 'info')
  const json = { ...asKey(APP_KEY), 'content-type': 'application/json' }
  const cases = [
    { name: 'bad JSON', options: { method: 'POST', url: '/v1/sessions', headers: json, payload: '{"userId":' }, status: 400, code: 'invalid_request' },
    { name: 'body too large', options: { method: 'POST', url: '/v1/sessions', headers: json, payload: JSON.stringify({ userId: 'x'.repeat(70_000) }) }, status: 413, code: 'payload_too_large' },
    { name: 'not JSON', options: { method: 'POST', url: '/v1/sessions', headers: { ...asKey(APP_KEY), 'content-type': 'text/plain' }, payload: 'x' }, status: 415, code: 'unsupported_media_type' },
    { name: 'bad percent-encoding', options: { method: 'GET', url: '/v1/sessions/%E0%A4%A', headers: asKey(APP_KEY) }, status: 400, code: 'invalid_request' },
    { name: 'parameter too long', options: { method: 'GET', url: `/v1/sessions/${'x'.repeat(5000)}`, headers: asKey(APP_KEY) }, status: 400, code: 'invalid_request' },
    { name: 'no such route', options: { method: 'GET', url: '/v2/nothing', headers: asKey(APP_KEY) }, status: 404, code: 'not_found' },
  ] as const
  const count = async (pattern: RegExp) => {
    const body = (await app.inject({ method: 'GET', url: '/metrics' })).body
    return body.split('\n').filter((line) => pattern.test(line)).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0)
  }
  for (const { name, options, status, code } of cases) {
    const requestsBefore = await count(new RegExp(`^http_requests_total\\{.*status="${status}"`))
    const errorsBefore = await count(new RegExp(`^http_errors_total\\{code="${code}"\\}`))
    const linesBefore = lines().length
    const res = await app.inject(options as InjectOptions)
    t.equal(res.statusCode, status, `${name}: ${res.body}`)
    await new Promise((resolve) => setImmediate(resolve))
    t.ok(lines().slice(linesBefore).some((line) => line.msg === 'request completed' && line.statusCode === status), `${name}: logged`)
    t.equal(await count(new RegExp(`^http_requests_total\\{.*status="${status}"`)), requestsBefore + 1, `${name}: counted in http_requests_total`)
    t.equal(await count(new RegExp(`^http_errors_total\\{code="${code}"\\}`)), errorsBefore + 1, `${name}: counted in http_errors_total`)
  }

  // Node's HTTP parser: only a real socket reaches it.
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const requestsBefore = await count(/^http_requests_total\{.*route="unknown",status="400"/)
  const linesBefore = lines().length
  const answer = await new Promise<string>((resolve, reject) => {
    let received = ''
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n'))
    socket.on('data', (chunk) => { received += chunk.toString() })
    socket.on('close', () => resolve(received))
    socket.on('error', reject)
  })
  t.match(answer, /^HTTP\/1\.1 400 /, 'unparsable request: 400')
  t.ok(lines().slice(linesBefore).some((line) => line.msg === 'request completed' && line.statusCode === 400 && line.cause === 'HPE_INVALID_CONTENT_LENGTH'), 'unparsable request: logged')
  t.equal(await count(/^http_requests_total\{.*route="unknown",status="400"/), requestsBefore + 1, 'unparsable request: counted')
})
