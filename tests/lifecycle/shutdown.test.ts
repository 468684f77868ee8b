// Graceful shutdown of a real service process: in-flight requests finish, new ones get 503, the pool closes, exit 0.
import t from 'tap'
import postgres from 'postgres'
import { createDatabase, databaseUrl } from '../helpers/db.js'
import { startServing } from '../support/process.js'

const KEY = 'app-secret-0123456789abcdef'
const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }

t.test('SIGTERM: new connections are refused, the in-flight request finishes, exit 0, no connections left', async (t) => {
  const name = await createDatabase(t)
  const url = databaseUrl(name)
  const service = await startServing(t, { DATABASE_URL: url, API_KEYS: `app:${KEY}` })
  const created = await (await fetch(`${service.base}/v1/sessions`, { method: 'POST', headers, body: JSON.stringify({ userId: 'u' }) })).json() as { session: { id: string } }
  // Not the service's application_name, so the final count sees only the service's connections.
  const sql = postgres(url, { max: 2, onnotice: () => {}, connection: { application_name: 'shutdown-test' } })
  t.teardown(() => sql.end({ timeout: 5 }))

  // Hold the session's row lock so a PATCH is still running when the signal arrives.
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  let locked!: () => void
  const isLocked = new Promise<void>((resolve) => { locked = resolve })
  const holder = sql.begin(async (tx) => {
    await tx`select id from sessions where id = ${created.session.id} for update`
    locked()
    await released
  })
  await isLocked
  const inFlight = fetch(`${service.base}/v1/sessions/${created.session.id}`, { method: 'PATCH', headers, body: JSON.stringify({ data: { step: 2 } }) })
  // Wait until the PATCH is waiting on the lock in Postgres.
  for (let i = 0; i < 100; i++) {
    const [{ waiting }] = await sql<{ waiting: number }[]>`
      select count(*)::int as waiting from pg_stat_activity where datname = ${name} and wait_event_type = 'Lock'`
    if (waiting > 0) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  const exited = new Promise<{ code: number | null; ms: number }>((resolve) => {
    const started = Date.now()
    service.child.once('exit', (code) => resolve({ code, ms: Date.now() - started }))
  })
  service.child.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 300))

  // The listener closes at once, so a balancer's next probe or request on a new connection is refused.
  const probe = await fetch(`${service.base}/readyz`).then((res) => res.status, (err: Error) => err.message)
  t.equal(probe, 'fetch failed', 'new connections are refused while the in-flight request drains')

  release()
  await holder
  const patched = await inFlight
  t.equal(patched.status, 200, 'the request in flight at SIGTERM completes')
  t.match(await patched.json(), { session: { data: { step: 2 }, version: 2 } })

  const { code, ms } = await exited
  t.equal(code, 0, 'exit code 0')
  t.ok(ms < 10_000, `exited within the grace delay (${ms} ms)`)
  t.match(service.stdout(), /"msg":"shutting down"/)
  // A backend leaves pg_stat_activity a moment after its client said goodbye.
  let connections = -1
  for (let i = 0; i < 40 && connections !== 0; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50))
    ;[{ connections }] = await sql<{ connections: number }[]>`
      select count(*)::int as connections from pg_stat_activity where datname = ${name} and application_name = 'session-service'`
  }
  t.equal(connections, 0, 'the pool is closed')
})

t.test('SIGTERM: a connection that was opened and never used does not hold the shutdown past the drain', async (t) => {
  const name = await createDatabase(t)
  const service = await startServing(t, { DATABASE_URL: databaseUrl(name), API_KEYS: `app:${KEY}` })
  const net = await import('node:net')
  const idle = net.connect({ host: '127.0.0.1', port: service.port })
  await new Promise((resolve) => idle.once('connect', resolve))
  t.teardown(() => idle.destroy())
  const started = Date.now()
  service.child.kill('SIGTERM')
  const exit = await service.waitForExit(15_000)
  t.equal(exit?.code, 0, 'exit code 0, within the grace delay')
  t.comment(`exited ${Date.now() - started} ms after SIGTERM with an unused connection open`)
})
