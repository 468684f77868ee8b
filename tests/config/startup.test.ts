// The real entry point (dist/main.js) as a child process: bad configuration fails fast, a good one serves, migrates and shuts down cleanly.
import postgres from 'postgres'
import t from 'tap'
import { listMigrations } from '../../src/migrate.js'
import { createDatabase, databaseUrl } from '../helpers/db.js'
import { ensureBuilt, freePort, isListening, startService } from '../support/process.js'

const APP_KEY = 'app-secret-0123456789abcdef'
const ADMIN_KEY = 'ops-secret-0123456789abcdef'

t.before(async () => {
  await ensureBuilt(t)
})

// A connection of the test's own, to look at the database the service used.
function inspect(t: { teardown(fn: () => unknown): void }, url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connection: { application_name: 'startup-test' } })
  t.teardown(() => sql.end({ timeout: 5 }))
  return sql
}

t.test('invalid configuration: exit != 0, one stderr line naming the variable, no socket bound', async (t) => {
  const name = await createDatabase(t)
  const url = databaseUrl(name)
  const cases: Array<{ variable: string; env: Record<string, string> }> = [
    { variable: 'COOKIE_SAMESITE', env: { COOKIE_SAMESITE: 'none', COOKIE_SECURE: 'false' } },
    { variable: 'SESSION_ON_LIMIT', env: { SESSION_ON_LIMIT: 'drop' } },
    { variable: 'COOKIE_NAME', env: { COOKIE_NAME: '__Host-sid', COOKIE_DOMAIN: 'example.com' } },
    { variable: 'SESSION_POLICIES', env: { SESSION_POLICIES: 'not-json' } },
    { variable: 'PORT', env: { PORT: 'abc' } },
    { variable: 'API_KEYS', env: { API_KEYS: 'app:short' } },
  ]
  // The six processes run side by side; each is judged on its own afterwards.
  const runs = await Promise.all(cases.map(async ({ variable, env }) => {
    const port = await freePort()
    // PORT=abc leaves the service no chosen port: watch its default instead, if nothing else holds it.
    const watched = env.PORT === undefined ? port : 8080
    const watchable = !(await isListening(watched))
    const service = startService(t, {
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: url,
      API_KEYS: `app:${APP_KEY}`,
      LOG_LEVEL: 'info',
      ...env,
    }, { port: watched })
    let bound = false
    let polling = true
    const poll = (async () => {
      while (polling) {
        if (watchable && (await isListening(watched, 100))) bound = true
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })()
    const exit = await service.waitForExit(15_000)
    polling = false
    await poll
    return { variable, env, watched, watchable, bound, exit, stderr: service.stderr(), stdout: service.stdout() }
  }))
  for (const run of runs) {
    t.test(Object.entries(run.env).map(([k, v]) => `${k}=${v}`).join(' '), async (t) => {
      t.ok(run.exit !== undefined, 'the process exits by itself within 15 s')
      t.not(run.exit?.code, 0, `exit code is not 0 (got ${JSON.stringify(run.exit)})`)
      const lines = run.stderr.split('\n').filter((line) => line !== '')
      t.equal(lines.length, 1, `stderr is exactly one line: ${JSON.stringify(run.stderr)}`)
      t.ok(run.stderr.endsWith('\n'), 'the line is terminated')
      t.match(lines[0] ?? '', new RegExp(`\\b${run.variable}\\b`), `the line names ${run.variable}`)
      if (run.watchable) t.notOk(run.bound, `nothing accepted connections on port ${run.watched} while it ran`)
      else t.comment(`port ${run.watched} was already in use by something else; only the log is checked`)
      t.notMatch(run.stdout, /listening/i, 'no "listening" log line')
    })
  }
})

t.test('a valid start serves, migrates, and exits 0 on SIGTERM leaving no connections', async (t) => {
  const name = await createDatabase(t)
  const url = databaseUrl(name)
  const port = await freePort()
  const service = startService(t, {
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: url,
    API_KEYS: `app:${APP_KEY}`,
    ADMIN_API_KEYS: `ops:${ADMIN_KEY}`,
    LOG_LEVEL: 'info',
  })
  await service.waitUntilServing()

  const healthz = await fetch(`${service.base}/healthz`, { signal: AbortSignal.timeout(5000) })
  t.equal(healthz.status, 200, '/healthz answers 200')
  const readyz = await fetch(`${service.base}/readyz`, { signal: AbortSignal.timeout(5000) })
  t.equal(readyz.status, 200, '/readyz answers 200')

  const sql = inspect(t, url)
  const expected = (await listMigrations()).map((m) => ({ version: m.version, name: m.name }))
  const rows = await sql<{ version: number; name: string }[]>`select version, name from schema_migrations order by version`
  t.same(rows.map((r) => ({ version: r.version, name: r.name })), expected, 'every migration recorded once')

  const created = await fetch(`${service.base}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userId: '42' }),
    signal: AbortSignal.timeout(5000),
  })
  t.equal(created.status, 201, 'the service works end to end')

  const open = await sql`select count(*)::int as n from pg_stat_activity where datname = ${name} and application_name = 'session-service'`
  t.ok(open[0].n > 0, `the service holds connections while running (${open[0].n})`)

  const startedAt = Date.now()
  service.child.kill('SIGTERM')
  const exit = await service.waitForExit(5000)
  t.same(exit, { code: 0, signal: null }, `SIGTERM → exit 0 within 5 s (took ${Date.now() - startedAt} ms)`)

  // A backend may need a moment to leave pg_stat_activity after its client hung up.
  let remaining = -1
  const deadline = Date.now() + 3000
  while (Date.now() < deadline) {
    const [row] = await sql`select count(*)::int as n from pg_stat_activity where datname = ${name} and application_name = 'session-service'`
    remaining = row.n
    if (remaining === 0) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(remaining, 0, 'no session-service connection left for this database')
  t.notOk(await isListening(port), 'the port is released')
})

t.test('no API keys on 127.0.0.1: starts and logs a warning about open access', async (t) => {
  const name = await createDatabase(t)
  const port = await freePort()
  const service = startService(t, { HOST: '127.0.0.1', PORT: String(port), DATABASE_URL: databaseUrl(name), LOG_LEVEL: 'info' })
  await service.waitUntilServing()
  const warnings = service.logLines().filter((line) => line.level === 40)
  const openAccess = warnings.filter((line) => /api key|open access|anonymous|no key/i.test(String(line.msg)))
  t.equal(openAccess.length, 1, `one warn-level line about open access (warnings: ${JSON.stringify(warnings)})`)
  service.child.kill('SIGTERM')
  t.same(await service.waitForExit(5000), { code: 0, signal: null }, 'exits 0 on SIGTERM')
})

t.test('MIGRATE=false on an empty database: starts, creates no tables', async (t) => {
  const name = await createDatabase(t)
  const url = databaseUrl(name)
  const port = await freePort()
  const service = startService(t, {
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: url,
    API_KEYS: `app:${APP_KEY}`,
    MIGRATE: 'false',
    LOG_LEVEL: 'info',
  })
  await service.waitUntilServing()
  // openapi.yaml: an unmigrated schema is "not ready" (503 migrations_pending), so a balancer keeps traffic away.
  // API.md's table says only "200 when the database answers, else 503".
  const readyz = await fetch(`${service.base}/readyz`, { signal: AbortSignal.timeout(5000) })
  t.equal(readyz.status, 503, '/readyz: not ready while the schema is missing')
  t.same(await readyz.json(), { status: 'migrations_pending' }, '/readyz says why')
  const sql = inspect(t, url)
  const tables = await sql<{ table_name: string }[]>`
    select table_name from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')`
  t.same(tables.map((row) => row.table_name), [], 'no table was created (not even schema_migrations)')
  service.child.kill('SIGTERM')
  t.same(await service.waitForExit(5000), { code: 0, signal: null }, 'exits 0 on SIGTERM')
})

