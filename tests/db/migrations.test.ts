// migrate(): every sql/NNN file once, recorded in schema_migrations, idempotent, safe when nodes start together, on Postgres 15.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { connect } from '../../src/db.js'
import { listMigrations, migrate, SQL_DIR } from '../../src/migrate.js'
import { createDatabase, databaseUrl, POOL } from '../helpers/db.js'

function pool(t: { teardown(fn: () => unknown): void }, url: string, max = 2) {
  const sql = connect(url, { ...POOL, databasePoolMax: max })
  t.teardown(() => sql.end({ timeout: 5 }))
  return sql
}

t.test('every file in sql/ is a numbered migration with a unique version', async (t) => {
  const files = (await readdir(SQL_DIR)).filter((file) => file.endsWith('.sql')).sort()
  const migrations = await listMigrations()
  t.ok(files.length > 0, 'there are migrations')
  t.same(migrations.map((m) => m.name), files, 'no .sql file is silently skipped by the name pattern')
  const versions = migrations.map((m) => m.version)
  t.equal(new Set(versions).size, versions.length, 'versions are unique')
})

t.test('two files of one number are refused before anything runs', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'migrations-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const name of ['001_a.sql', '002_b.sql', '002_c.sql']) await writeFile(path.join(dir, name), 'select 1;\n')
  await t.rejects(listMigrations(dir), /two migrations share the number 2: 002_b\.sql and 002_c\.sql/)
})

t.test('a fresh database: each migration applied once and recorded; a second run applies nothing', async (t) => {
  const url = databaseUrl(await createDatabase(t))
  const sql = pool(t, url)
  const migrations = await listMigrations()

  const first = await migrate(sql)
  t.same(first, migrations.map((m) => m.name), 'the first run applies every migration, in order')
  const rows = await sql<{ version: number; name: string; applied_at: Date }[]>`select version, name, applied_at from schema_migrations order by version`
  t.same(rows.map((r) => [r.version, r.name]), migrations.map((m) => [m.version, m.name]), 'one schema_migrations row per migration')
  t.ok(rows.every((r) => r.applied_at instanceof Date), 'each row has applied_at')

  const tables = await sql<{ name: string }[]>`
    select table_name as name from information_schema.tables where table_schema = 'public' order by 1`
  for (const table of ['audit_events', 'rotated_tokens', 'schema_migrations', 'sessions']) {
    t.ok(tables.some((row) => row.name === table), `table ${table} exists`)
  }

  const second = await migrate(sql)
  t.same(second, [], 'the second run applies nothing')
  const [{ n }] = await sql`select count(*)::int as n from schema_migrations`
  t.equal(n, migrations.length, 'and adds no row')
})

t.test('5 concurrent migrate() calls from separate pools: all succeed, each migration applied exactly once', async (t) => {
  const url = databaseUrl(await createDatabase(t))
  const migrations = await listMigrations()
  const pools = Array.from({ length: 5 }, () => pool(t, url, 1))
  const results = await Promise.allSettled(pools.map((sql) => migrate(sql)))
  const failures = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))
  t.same(failures, [], 'no call failed')
  const applied = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []))
  t.same([...applied].sort(), migrations.map((m) => m.name).sort(), 'across all calls, every migration was applied exactly once')
  const rows = await pools[0]<{ version: number; n: number }[]>`
    select version, count(*)::int as n from schema_migrations group by version order by version`
  t.same(rows.map((r) => [r.version, r.n]), migrations.map((m) => [m.version, 1]), 'exactly one row per migration')
})

t.test('the migrations run on Postgres 15 (no newer features needed)', async (t) => {
  const url = databaseUrl(await createDatabase(t))
  const sql = pool(t, url)
  const [{ version, num }] = await sql<{ version: string; num: number }[]>`
    select version() as version, current_setting('server_version_num')::int as num`
  t.comment(`server: ${version}`)
  t.ok(num >= 150000, `the server is Postgres 15 or newer (server_version_num ${num})`)
  if (num >= 160000) t.comment('the server is newer than 15: this run does not prove the SQL avoids post-15 features; run against Postgres 15 for that')
  const applied = await migrate(sql)
  t.equal(applied.length, (await listMigrations()).length, 'all migrations apply on this server')
})
