// Nodes migrating an empty database at the same time, repeated: each migration applied once, and two real service
// processes started together on an empty database both serve on one schema.
import postgres from 'postgres'
import t from 'tap'
import { connect } from '../../src/db.js'
import { listMigrations, migrate } from '../../src/migrate.js'
import { createDatabase, databaseUrl, POOL } from '../helpers/db.js'
import { freePort, startService, ensureBuilt } from '../support/process.js'

const ROUNDS = 5
const NODES = 4
const KEY = 'app-secret-0123456789abcdef'

t.test(`${NODES} pools migrating one empty database at once, ${ROUNDS} rounds: every migration applied exactly once`, async (t) => {
  const migrations = (await listMigrations()).map((m) => m.name)
  const problems: string[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const url = databaseUrl(await createDatabase(t))
    const pools = Array.from({ length: NODES }, () => connect(url, { ...POOL, databasePoolMax: 1 }))
    try {
      const results = await Promise.allSettled(pools.map((sql) => migrate(sql)))
      const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))
      if (failed.length > 0) problems.push(`round ${round}: ${failed.join('; ')}`)
      const applied = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : [])).sort()
      if (applied.join() !== [...migrations].sort().join()) problems.push(`round ${round}: applied ${applied.join(',')}`)
      const rows = await pools[0]<{ n: number }[]>`select count(*)::int as n from schema_migrations group by version having count(*) > 1`
      if (rows.length > 0) problems.push(`round ${round}: a version recorded twice`)
    } finally {
      await Promise.all(pools.map((sql) => sql.end({ timeout: 5 })))
    }
  }
  t.same(problems, [], `${ROUNDS} rounds × ${NODES} concurrent migrate() calls: no failure, each migration applied once per database`)
})

t.test('two service processes started together on an empty database both serve, on one schema', async (t) => {
  await ensureBuilt(t)
  const name = await createDatabase(t)
  const url = databaseUrl(name)
  const ports = [await freePort(), await freePort()]
  const services = ports.map((port) => startService(t, { HOST: '127.0.0.1', PORT: String(port), DATABASE_URL: url, API_KEYS: `app:${KEY}`, LOG_LEVEL: 'info' }, { port }))
  await Promise.all(services.map((service) => service.waitUntilServing(30_000)))
  for (const service of services) {
    const ready = await fetch(`${service.base}/readyz`)
    t.equal(ready.status, 200, `node on port ${service.port} is ready`)
  }
  const applied = services.flatMap((service) => service.logLines().filter((line) => line.msg === 'migrations applied').flatMap((line) => line.applied as string[]))
  t.same(applied.sort(), (await listMigrations()).map((m) => m.name).sort(), 'between them, the two nodes applied each migration once')
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  t.teardown(() => sql.end({ timeout: 5 }))
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from schema_migrations`
  t.equal(n, (await listMigrations()).length, 'one schema_migrations row per migration')
  // A session created on one node validates on the other.
  const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }
  const created = await (await fetch(`${services[0].base}/v1/sessions`, { method: 'POST', headers, body: JSON.stringify({ userId: 'two-nodes' }) })).json() as { token: string }
  const validated = await fetch(`${services[1].base}/v1/sessions/validate`, { method: 'POST', headers, body: JSON.stringify({ token: created.token }) })
  t.equal(validated.status, 200, 'a session created on one node validates on the other')
})
