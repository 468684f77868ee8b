// One "request completed" line per request: at info, except a successful validation, /v1/auth or probe, which is at debug
// (they come with every request of every app and every few seconds from load balancers). A failed one stays at info.
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
