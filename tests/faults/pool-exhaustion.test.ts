// Pool exhaustion and a slow database: a bounded wait for a database slot, then 503 unavailable; a stuck statement ends at statement_timeout.
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import pino from 'pino'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { connect, type Sql } from '../../src/db.js'
import { createDbGate } from '../../src/db-gate.js'
import { AppError, createErrorHandler } from '../../src/errors.js'
import { buildServer } from '../../src/server.js'
import { BASE_ENV, call } from '../helpers/app.js'
import { freshDatabase } from '../helpers/db.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// The promise's value, or 'hung' once ms pass first; the timer never outlives the race.
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<'hung'>((resolve) => { timer = setTimeout(() => resolve('hung'), ms) })
  try {
    return await Promise.race([promise, bound])
  } finally {
    clearTimeout(timer)
  }
}

interface Node {
  app: FastifyInstance
  // The service's own pool, opened exactly as src/database.ts opens it.
  sql: Sql
}

async function node(t: Test, url: string, env: Record<string, string>): Promise<Node> {
  const config = loadConfig({ ...BASE_ENV, ...env, DATABASE_URL: url })
  const sql = connect(url, config)
  const app = await buildServer({ config, sql, cron: false, loggerInstance: pino({ level: 'silent' }) })
  await app.ready()
  t.teardown(() => app.close())
  return { app, sql }
}

// A connection of the test's own that holds row locks, so the service's statements block in Postgres as on a slow database.
function locker(t: Test, url: string): postgres.Sql {
  const sql = postgres(url, { max: 4, onnotice: () => {}, connection: { application_name: 'pool-exhaustion-test' } })
  t.teardown(() => sql.end({ timeout: 5 }))
  return sql
}

// Opens a transaction that locks the session's row until release() is called.
async function holdRow(sql: postgres.Sql, id: string): Promise<{ release(): void; done: Promise<unknown> }> {
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  let locked!: () => void
  const isLocked = new Promise<void>((resolve) => { locked = resolve })
  const done = sql.begin(async (tx) => {
    await tx`select id from sessions where id = ${id} for update`
    locked()
    await released
  })
  await isLocked
  return { release, done }
}

async function waitForLockWaiters(sql: postgres.Sql, database: string, count: number): Promise<number> {
  let waiting = 0
  for (let i = 0; i < 200 && waiting < count; i++) {
    ;[{ waiting }] = await sql<{ waiting: number }[]>`
      select count(*)::int as waiting from pg_stat_activity
       where datname = ${database} and application_name = 'session-service' and wait_event_type = 'Lock'`
    if (waiting < count) await sleep(25)
  }
  return waiting
}

function isUnavailable(res: LightMyRequestResponse): boolean {
  if (res.statusCode !== 503 || !/^\d+$/.test(String(res.headers['retry-after']))) return false
  const body = res.json() as { error?: { code?: string; message?: unknown; details?: unknown } }
  return Object.keys(body).length === 1 && body.error?.code === 'unavailable' && typeof body.error.message === 'string' && Array.isArray(body.error.details)
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]
}

t.test('the gate: FIFO hand-over, a bounded queue, a bounded wait, idempotent release', async (t) => {
  const gate = createDbGate({ slots: 2, queueMax: 2, queueTimeoutMs: 200 })
  const a = await gate.acquire()
  const b = await gate.acquire()
  t.equal(gate.running, 2)
  const order: string[] = []
  const c = gate.acquire().then((release) => { order.push('c'); return release })
  const d = gate.acquire().then((release) => { order.push('d'); return release })
  t.equal(gate.waiting, 2, 'two wait')
  const refused = await gate.acquire().then(() => 'granted', (err: unknown) => err)
  t.ok(refused instanceof AppError && refused.statusCode === 503 && refused.code === 'unavailable', 'a third waiter is refused at once with 503 unavailable')
  a()
  a() // a second call must not free a second slot
  const releaseC = await c
  t.same(order, ['c'], 'the slot went to the first waiter')
  t.equal(gate.waiting, 1, 'the other still waits: the double release freed nothing')
  const timedOut = await d.then(() => 'granted', (err: unknown) => err)
  t.ok(timedOut instanceof AppError && timedOut.code === 'unavailable', 'the waiter that got no slot within the timeout is refused')
  t.equal(gate.waiting, 0, 'and leaves the queue')
  releaseC()
  b()
  t.equal(gate.running, 0, 'every slot is back')
  const none = createDbGate({ slots: 1, queueMax: 10, queueTimeoutMs: 0 })
  const only = await none.acquire()
  t.ok(await none.acquire().then(() => false, () => true), 'DATABASE_QUEUE_TIMEOUT_MS=0: no waiting at all')
  only()
})

t.test('the gate: a handler whose database call never settles answers 503 after the settle bound and keeps its slot', async (t) => {
  const gate = createDbGate({ slots: 1, queueMax: 1, queueTimeoutMs: 50, settleTimeoutMs: 150 })
  const app = Fastify({ logger: false })
  app.setErrorHandler(createErrorHandler(() => {}))
  app.addHook('onRoute', (route) => gate.wrap(route))
  let finish: (value: unknown) => void = () => {}
  const stuck = new Promise((resolve) => { finish = resolve })
  app.get('/stuck', async () => { await stuck; return { late: true } })
  t.teardown(() => app.close())
  const started = Date.now()
  const res = await app.inject({ method: 'GET', url: '/stuck' })
  const tookMs = Date.now() - started
  t.equal(res.statusCode, 503, res.body)
  t.equal(res.json().error.code, 'unavailable', 'in the contract shape')
  t.ok(tookMs >= 140 && tookMs < 2000, `answered after the bound, not never (${tookMs} ms)`)
  t.equal(gate.running, 1, 'the slot stays taken while the call is still out')
  const next = await app.inject({ method: 'GET', url: '/stuck' })
  t.equal(next.statusCode, 503, 'another request finds no slot and is refused by the queue deadline')
  finish(undefined)
  await sleep(10)
  t.equal(gate.running, 0, 'the slot is freed once the call settles')
})

t.test('DATABASE_POOL_MAX=2 held busy: excess requests answer 503 by the queue deadline, none waits for the pool', async (t) => {
  const { name, url, sql: migrator } = await freshDatabase(t)
  await migrator.end()
  const QUEUE_TIMEOUT_MS = 1000
  const QUEUE_MAX = 5
  // A long statement_timeout, so only the gate can end the waits here (the next test shows statement_timeout).
  const { app } = await node(t, url, {
    DATABASE_POOL_MAX: '2', DATABASE_QUEUE_MAX: String(QUEUE_MAX), DATABASE_QUEUE_TIMEOUT_MS: String(QUEUE_TIMEOUT_MS), DATABASE_STATEMENT_TIMEOUT_MS: '30000',
  })
  const create = async (userId: string) => (await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId } })).json() as { token: string; session: { id: string } }
  const [a, b, c] = [await create('pool-a'), await create('pool-b'), await create('pool-c')]
  const test = locker(t, url)

  // Two PATCHes block on row locks, holding both slots and both pooled connections.
  const holdA = await holdRow(test, a.session.id)
  const holdB = await holdRow(test, b.session.id)
  let blockedSettled = false
  const blocked = Promise.all([
    call(app, { method: 'PATCH', url: `/v1/sessions/${a.session.id}`, payload: { data: { step: 'a' } } }),
    call(app, { method: 'PATCH', url: `/v1/sessions/${b.session.id}`, payload: { data: { step: 'b' } } }),
  ]).finally(() => { blockedSettled = true })
  t.equal(await waitForLockWaiters(test, name, 2), 2, 'both PATCHes wait on a lock in Postgres')

  const excess: Array<() => Promise<LightMyRequestResponse>> = []
  for (let i = 0; i < 4; i++) {
    excess.push(
      () => call(app, { method: 'POST', url: '/v1/sessions/validate', payload: { token: c.token } }),
      () => call(app, { method: 'GET', url: `/v1/sessions/${c.session.id}` }),
      () => call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'pool-new' } }),
      () => call(app, { method: 'PATCH', url: `/v1/sessions/${c.session.id}`, payload: { data: { n: i } } }),
      () => call(app, { method: 'GET', url: '/v1/users/pool-c/sessions' }),
    )
  }
  const started = Date.now()
  const answers = Promise.all(excess.map(async (send) => {
    const res = await send()
    return { res, ms: Date.now() - started }
  }))
  // A request that waited for the pool would still be waiting when this bound passes; the test then fails instead of hanging.
  const settled = await within(answers, 15_000)
  t.not(settled, 'hung', 'every excess request answered while the pool was still held')
  if (settled === 'hung') {
    holdA.release()
    holdB.release()
    return
  }
  t.notOk(blockedSettled, 'and the locks were still held when they answered')
  const bad = settled.filter(({ res }) => !isUnavailable(res)).map(({ res }) => `${res.statusCode} ${res.body.slice(0, 120)}`)
  t.same(bad, [], `all ${settled.length} excess requests are 503 unavailable with Retry-After in the contract shape`)
  const times = settled.map(({ ms }) => ms).sort((x, y) => x - y)
  const immediate = times.filter((ms) => ms < QUEUE_TIMEOUT_MS / 2)
  const waited = times.filter((ms) => ms >= QUEUE_TIMEOUT_MS / 2)
  t.comment(`pool exhaustion: ${settled.length} excess requests → ${settled.length} × 503; ${immediate.length} refused at once (queue of ${QUEUE_MAX} full, median ${median(immediate)} ms), ${waited.length} after waiting (median ${median(waited)} ms, max ${times[times.length - 1]} ms; DATABASE_QUEUE_TIMEOUT_MS=${QUEUE_TIMEOUT_MS})`)

  holdA.release()
  holdB.release()
  await Promise.all([holdA.done, holdB.done])
  const [patchA, patchB] = await blocked
  t.equal(patchA.statusCode, 200, 'the blocked PATCHes complete once the locks go')
  t.equal(patchB.statusCode, 200)
  // Within the bounds (2 running, 5 waiting) nothing is refused once the pool is free again.
  for (let round = 0; round < 3; round++) {
    const after = await Promise.all(Array.from({ length: 2 + QUEUE_MAX }, () => call(app, { method: 'POST', url: '/v1/sessions/validate', payload: { token: c.token } })))
    t.same(after.map((res) => res.statusCode), Array(2 + QUEUE_MAX).fill(200), `round ${round + 1}: ${2 + QUEUE_MAX} parallel validates all succeed`)
  }
})

t.test('a statement stuck past DATABASE_STATEMENT_TIMEOUT_MS answers 503; SHOW statement_timeout on a service connection is not 0', async (t) => {
  const { url, sql: migrator } = await freshDatabase(t)
  await migrator.end()
  const defaults = await node(t, url, {})
  const [{ statement_timeout: byDefault }] = await defaults.sql`show statement_timeout`
  t.equal(byDefault, '5s', 'a service connection with the default configuration has statement_timeout 5s')

  const { app, sql } = await node(t, url, { DATABASE_POOL_MAX: '2', DATABASE_STATEMENT_TIMEOUT_MS: '1000' })
  const [{ statement_timeout: configured }] = await sql`show statement_timeout`
  t.equal(configured, '1s', 'DATABASE_STATEMENT_TIMEOUT_MS=1000 gives statement_timeout 1s')
  const created = (await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'stuck' } })).json() as { session: { id: string } }
  const test = locker(t, url)
  const hold = await holdRow(test, created.session.id)
  const started = Date.now()
  const stuck = call(app, { method: 'PATCH', url: `/v1/sessions/${created.session.id}`, payload: { data: { x: 1 } } })
  const settled = await within(stuck, 15_000)
  const ms = Date.now() - started
  hold.release()
  await hold.done
  t.not(settled, 'hung', 'the blocked PATCH answered while the lock was still held')
  if (settled === 'hung') return
  t.ok(isUnavailable(settled), `it is 503 unavailable with Retry-After (got ${settled.statusCode} ${settled.body.slice(0, 120)})`)
  t.comment(`statement_timeout: a PATCH blocked on a row lock answered 503 after ${ms} ms (DATABASE_STATEMENT_TIMEOUT_MS=1000)`)
  const [{ n }] = await test<{ n: number }[]>`select count(*)::int as n from audit_events where session_id = ${created.session.id} and type = 'data_updated'`
  t.equal(n, 0, 'the cancelled PATCH left no event')
  const again = await call(app, { method: 'PATCH', url: `/v1/sessions/${created.session.id}`, payload: { data: { x: 2 } } })
  t.equal(again.statusCode, 200, 'once the lock is gone the same PATCH succeeds')
})
