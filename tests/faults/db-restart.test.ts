// The database stops for ~3 s under a steady stream of requests to a real service process, then starts again on the same
// data directory and port: fast 503s with Retry-After during the outage, recovery without restarting the service, nothing acknowledged lost.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { checkDriver } from '../../src/driver.js'
import { startEmbeddedDb, type EmbeddedDb } from '../../src/embedded-db.js'
import { createDatabase, databaseUrl } from '../helpers/db.js'
import { freePort, startServing, type Service } from '../support/process.js'

const KEY = 'app-secret-0123456789abcdef'
const HEADERS = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }
// No request may take longer than this: DATABASE_CONNECT_TIMEOUT (5 s) plus a second of slack.
const BOUND_MS = 6000
const BEFORE_MS = 2000
const OUTAGE_MS = 3000
const AFTER_MS = 5000
const PAUSE_MS = 10

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Sample {
  op: 'create' | 'validate' | 'revoke' | 'readyz'
  start: number
  end: number
  status: number | 'network_error'
  body: unknown
  retryAfter: string | null
  error?: string
}

interface Issued { token: string; id: string }

function hasErrorShape(body: unknown, code: string): boolean {
  if (typeof body !== 'object' || body === null || Object.keys(body).length !== 1) return false
  const error = (body as { error?: Record<string, unknown> }).error
  return error?.code === code && typeof error.message === 'string' && Array.isArray(error.details)
}

// Two real processes and two fault runs: about 30 s alone, more on a busy machine.
t.setTimeout(240_000)

// postgres.js 3.4.9 had faults that this test and prune-terminated.test.ts found (a restart could kill the process with
// a write to a closed socket, fail a query seconds later with the old connection's error, leave a query in flight at a
// connection reset unsettled for ever, or hand a dead connection back); tests/db/driver-faults.test.ts reproduces each.
// 4.1.0 has none of them, and the service refuses to start on any other version (src/driver.ts).
t.test('the driver installed is the one the service requires', async (t) => {
  t.equal(checkDriver(), undefined, 'node_modules/postgres is the version package.json pins (run npm install)')
})

const EXPECTED: Record<Sample['op'], number> = { create: 201, validate: 200, revoke: 204, readyz: 200 }

// A steady stream against one service: a creator, two validators (touch and not), a creator-then-logout of its own
// sessions (so validators never meet a revoked token) and a /readyz poller, each pausing PAUSE_MS between requests.
function startLoad(base: string) {
  const t0 = performance.now()
  const now = () => performance.now() - t0
  const samples: Sample[] = []
  const created: Issued[] = []
  const revoked: Issued[] = []

  async function send(op: Sample['op'], method: string, url: string, body?: unknown): Promise<Sample> {
    const start = now()
    let sample: Sample
    try {
      const res = await fetch(`${base}${url}`, {
        method,
        headers: body === undefined ? { authorization: HEADERS.authorization } : HEADERS,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(BOUND_MS),
      })
      const text = await res.text()
      let parsed: unknown = text
      try { parsed = text === '' ? null : JSON.parse(text) } catch { /* kept as text */ }
      sample = { op, start, end: now(), status: res.status, body: parsed, retryAfter: res.headers.get('retry-after') }
    } catch (err) {
      sample = { op, start, end: now(), status: 'network_error', body: null, retryAfter: null, error: `${(err as Error).name}: ${(err as Error).message}` }
    }
    samples.push(sample)
    return sample
  }
  const create = async (userId: string): Promise<Issued | undefined> => {
    const res = await send('create', 'POST', '/v1/sessions', { userId })
    if (res.status !== 201) return undefined
    const { token, session } = res.body as { token: string; session: { id: string } }
    return { token, id: session.id }
  }

  let running = false
  let loops: Array<Promise<void>> = []
  const hardStop = 60_000
  const loop = async (body: () => Promise<unknown>) => {
    while (running && now() < hardStop) {
      await body()
      await sleep(PAUSE_MS)
    }
  }
  let n = 0
  const pickToken = () => created[Math.floor(Math.random() * created.length)].token
  return {
    samples, created, revoked, now,
    // 20 sessions first, one at a time, then the stream.
    async start(): Promise<number> {
      for (let i = 0; i < 20; i++) {
        const issued = await create(`before-${i % 5}`)
        if (issued) created.push(issued)
      }
      running = true
      loops = [
        loop(async () => { const issued = await create(`load-${n++ % 7}`); if (issued) created.push(issued) }),
        loop(() => send('validate', 'POST', '/v1/sessions/validate', { token: pickToken() })),
        loop(() => send('validate', 'POST', '/v1/sessions/validate', { token: pickToken(), touch: false })),
        loop(async () => {
          const issued = await create(`logout-${n++ % 3}`)
          if (issued === undefined) return
          const res = await send('revoke', 'POST', '/v1/sessions/revoke', { token: issued.token })
          if (res.status === 204) revoked.push(issued)
        }),
        loop(() => send('readyz', 'GET', '/readyz')),
      ]
      return created.length
    },
    async stop(): Promise<void> {
      running = false
      await Promise.all(loops)
    },
  }
}

const describe = (s: Sample) => `${s.op} at ${Math.round(s.start)} ms: ${s.status} ${JSON.stringify(s.body).slice(0, 160)}${s.error ? ` (${s.error})` : ''}`
const isUnavailable = (s: Sample) => s.status === 503 && /^\d+$/.test(s.retryAfter ?? '') && hasErrorShape(s.body, 'unavailable')

// The checks every fault run ends with: answers within the bound, no 5xx but 503 in the contract shape, the same
// process still serving without errors, and every acknowledged create and logout still true.
async function checkAfterFault(t: Test, service: Service, load: ReturnType<typeof startLoad>): Promise<void> {
  const api = load.samples.filter((s) => s.op !== 'readyz')
  t.test('no request failed at the network level or took longer than the bound', async (t) => {
    t.same(load.samples.filter((s) => s.status === 'network_error').map(describe), [], `every one of ${load.samples.length} requests got an answer within ${BOUND_MS} ms`)
  })
  t.test('no 500, and every failure is 503 unavailable with Retry-After in the contract shape', async (t) => {
    t.same(api.filter((s) => typeof s.status === 'number' && s.status >= 500 && s.status !== 503).map(describe), [], 'no 5xx other than 503')
    const failures = api.filter((s) => s.status !== EXPECTED[s.op])
    t.same(failures.filter((s) => !isUnavailable(s)).map(describe), [], `each of ${failures.length} unsuccessful answers is 503 unavailable with Retry-After`)
  })
  t.test('the same process still serves, and logged no error', async (t) => {
    t.equal(service.child.exitCode, null, `the service process is still the same, running one (stderr: ${service.stderr().slice(0, 1500)})`)
    const ready = await fetch(`${service.base}/readyz`, { signal: AbortSignal.timeout(BOUND_MS) })
    t.equal(ready.status, 200, '/readyz is 200')
    const errors = service.logLines().filter((line) => Number(line.level) >= 50)
    t.same(errors.map((line) => `${String(line.msg)} ${JSON.stringify(line.err ?? '').slice(0, 300)}`), [], 'no log line at level error or fatal')
    t.equal(service.stderr(), '', 'nothing on stderr (no unhandled rejection)')
  })
  await t.test('every acknowledged session still validates; every acknowledged logout holds', async (t) => {
    const answers: Array<{ what: string; id: string; status: number; reason?: string; revokeReason?: string }> = []
    const check = async (issued: Issued, what: string) => {
      const res = await fetch(`${service.base}/v1/sessions/validate`, { method: 'POST', headers: HEADERS, body: JSON.stringify({ token: issued.token, touch: false }), signal: AbortSignal.timeout(BOUND_MS) })
      const body = await res.json() as { error?: { reason?: string; revokeReason?: string } }
      answers.push({ what, id: issued.id, status: res.status, reason: body.error?.reason, revokeReason: body.error?.revokeReason })
    }
    const all = [...load.created.map((issued) => [issued, 'created'] as const), ...load.revoked.map((issued) => [issued, 'revoked'] as const)]
    for (let i = 0; i < all.length; i += 20) await Promise.all(all.slice(i, i + 20).map(([issued, what]) => check(issued, what)))
    t.same(answers.filter((a) => a.what === 'created' && a.status !== 200), [], `all ${load.created.length} acknowledged sessions validate`)
    t.same(answers.filter((a) => a.what === 'revoked' && !(a.status === 401 && a.reason === 'revoked' && a.revokeReason === 'logout')), [],
      `all ${load.revoked.length} acknowledged logouts answer 401 revoked/logout`)
  })
}

t.test('database restart under load: 503 unavailable during the outage, recovery on its own, nothing acknowledged lost', async (t) => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'db-restart-'))
  await fs.chmod(dataDir, 0o755) // when root, the embedded server runs as OS user postgres and must reach it
  const port = await freePort()
  let db: EmbeddedDb = await startEmbeddedDb({ dataDir, port, log: () => {} })
  t.teardown(async () => {
    await db.stop()
    await fs.rm(dataDir, { recursive: true, force: true })
  })
  // The service migrates the new cluster itself (MIGRATE defaults to true).
  const service = await startServing(t, { DATABASE_URL: db.url, API_KEYS: `app:${KEY}`, LOG_LEVEL: 'warn' })
  const load = startLoad(service.base)
  const { now, samples } = load
  t.equal(await load.start(), 20, '20 sessions created before the stream starts')

  await sleep(BEFORE_MS)
  const stopBegin = now()
  await db.stop()
  const stopped = now()
  await sleep(OUTAGE_MS)
  const startBegin = now()
  db = await startEmbeddedDb({ dataDir, port, log: () => {} })
  const accepting = now()
  await sleep(AFTER_MS)
  await load.stop()

  const api = samples.filter((s) => s.op !== 'readyz')
  const during = api.filter((s) => s.start >= stopped && s.end <= startBegin)
  t.test('during the outage every answer is 503 unavailable with Retry-After', async (t) => {
    t.ok(during.length >= 20, `a steady stream kept arriving during the outage (${during.length} requests)`)
    t.same(during.filter((s) => !isUnavailable(s)).map(describe), [], 'all of them 503 unavailable with Retry-After')
    const readyDuring = samples.filter((s) => s.op === 'readyz' && s.start >= stopped && s.end <= startBegin)
    t.ok(readyDuring.length > 0, `/readyz was polled during the outage (${readyDuring.length} times)`)
    t.same(readyDuring.filter((s) => !(s.status === 503 && (s.body as { status?: string })?.status === 'database_unavailable')).map(describe), [],
      '/readyz answered 503 database_unavailable every time')
  })

  // The last answer that was not a success, among requests made after Postgres accepted connections again.
  const afterStart = api.filter((s) => s.start >= accepting)
  const lastFailure = afterStart.filter((s) => s.status !== EXPECTED[s.op]).reduce((max, s) => Math.max(max, s.end), accepting)
  const firstSuccess = afterStart.find((s) => s.status === EXPECTED[s.op])
  const recoveryMs = Math.round(lastFailure - accepting)
  t.test('the service recovers on its own, without a restart', async (t) => {
    for (const op of ['create', 'validate', 'revoke'] as const) {
      t.ok(afterStart.some((s) => s.op === op && s.status === EXPECTED[op]), `${op} succeeds again after the restart`)
    }
    const lastSecond = api.filter((s) => s.start >= accepting + AFTER_MS - 1000)
    t.ok(lastSecond.length > 0, `requests kept coming in the last second (${lastSecond.length})`)
    t.same(lastSecond.filter((s) => s.status !== EXPECTED[s.op]).map(describe), [], 'and every one of them succeeded')
  })
  await checkAfterFault(t, service, load)

  const during503 = during.filter((s) => s.status === 503).length
  const maxDuring = during.reduce((max, s) => Math.max(max, s.end - s.start), 0)
  t.comment(`db restart: ${during.length} requests during the ${Math.round(startBegin - stopped)} ms outage, ${during503} × 503 (slowest ${Math.round(maxDuring)} ms), ` +
    `0 × 500; Postgres stopped in ${Math.round(stopped - stopBegin)} ms and restarted in ${Math.round(accepting - startBegin)} ms; ` +
    `recovery ${recoveryMs} ms after it accepted connections (first success after ${firstSuccess ? Math.round(firstSuccess.end - accepting) : '-'} ms); ` +
    `${api.length} API requests in all; ${load.created.length} acknowledged creates and ${load.revoked.length} acknowledged logouts checked afterwards`)
})

t.test('the service\'s backends terminated 10 times under load (pg_terminate_backend): 503 at worst, nothing acknowledged lost', async (t) => {
  const name = await createDatabase(t)
  const service = await startServing(t, { DATABASE_URL: databaseUrl(name), API_KEYS: `app:${KEY}`, LOG_LEVEL: 'warn' })
  const admin = postgres(databaseUrl(name), { max: 1, onnotice: () => {}, connection: { application_name: 'terminate-test' } })
  t.teardown(() => admin.end({ timeout: 5 }))
  const load = startLoad(service.base)
  await load.start()
  await sleep(500)
  let terminated = 0
  for (let i = 0; i < 10; i++) {
    const rows = await admin`select pg_terminate_backend(pid) as done from pg_stat_activity where datname = ${name} and application_name = 'session-service'`
    terminated += rows.filter((row) => row.done === true).length
    await sleep(300)
  }
  await sleep(1000)
  await load.stop()
  t.ok(terminated >= 10, `${terminated} service backends terminated`)
  await checkAfterFault(t, service, load)
  const api = load.samples.filter((s) => s.op !== 'readyz')
  t.comment(`backend termination: ${terminated} backends terminated in 10 rounds under ${api.length} API requests; ` +
    `${api.filter((s) => s.status === 503).length} × 503, 0 × 500; ${load.created.length} acknowledged creates and ${load.revoked.length} logouts checked afterwards`)
})
