// migrate() on large tables: not bound by the service's statement timeout, one transaction per file, non-transactional
// files for CREATE INDEX CONCURRENTLY, nodes that start meanwhile wait for it, and lock waits are bounded.
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { connect } from '../../src/db.js'
import { migrate, splitStatements } from '../../src/migrate.js'
import { createDatabase, databaseUrl, POOL, TEST_POOL } from '../helpers/db.js'

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures')
// The service's pool as a node has it, with a statement timeout shorter than the slow migration.
const SHORT = { ...POOL, databasePoolMax: 1, databaseStatementTimeoutMs: 1000 }

function pool(t: { teardown(fn: () => unknown): void }, url: string) {
  const sql = connect(url, SHORT)
  t.teardown(() => sql.end({ timeout: 5 }))
  return sql
}

t.test('a migration slower than the statement timeout succeeds, and a no-transaction file builds an index concurrently', async (t) => {
  const url = databaseUrl(await createDatabase(t))
  const sql = pool(t, url)
  const started = performance.now()
  const applied = await migrate(sql, path.join(FIXTURES, 'slow-migrations'))
  t.same(applied, ['001_slow.sql', '002_concurrent_index.sql'])
  t.ok(performance.now() - started >= 2000, 'the 2 s migration ran whole under a 1 s statement timeout')
  const [index] = await sql<{ valid: boolean }[]>`
    select i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = 'slow_v_idx'`
  t.same(index, { valid: true }, 'the concurrently built index exists and is valid')
  const [{ timeout }] = await sql<{ timeout: string }[]>`select current_setting('statement_timeout') as timeout`
  t.equal(timeout, '1s', 'the connection went back to the pool with the service\'s statement timeout')
  const again = await migrate(sql, path.join(FIXTURES, 'slow-migrations'))
  t.same(again, [], 'a second run applies nothing')
})

t.test('a node that starts while another migrates waits for it, then finds nothing to do', async (t) => {
  const url = databaseUrl(await createDatabase(t))
  const first = pool(t, url)
  const second = pool(t, url)
  const heard: string[] = []
  const running = migrate(first, path.join(FIXTURES, 'slow-migrations'))
  await new Promise((resolve) => setTimeout(resolve, 500))
  const waited = await migrate(second, { dir: path.join(FIXTURES, 'slow-migrations'), log: (message) => heard.push(message) })
  t.same(await running, ['001_slow.sql', '002_concurrent_index.sql'], 'the first node applied both')
  t.same(waited, [], 'the second node waited and applied nothing, without an error')
  t.ok(heard.includes('waiting for another node to finish migrating'), 'and said that it was waiting')
})

t.test('each file is its own transaction: a failing file leaves the ones before it applied', async (t) => {
  const url = databaseUrl(await createDatabase(t))
  const sql = pool(t, url)
  await t.rejects(migrate(sql, path.join(FIXTURES, 'failing-migrations')), /no_such_function/)
  const rows = await sql<{ name: string }[]>`select name from schema_migrations order by version`
  t.same(rows.map((r) => r.name), ['001_good.sql'])
  const [{ kept, lost }] = await sql<{ kept: boolean; lost: boolean }[]>`
    select to_regclass('kept') is not null as kept, to_regclass('lost') is not null as lost`
  t.same({ kept, lost }, { kept: true, lost: false }, 'the failed file left nothing behind')
})

t.test('a migration waiting for a table lock gives up after the lock timeout and tries again', async (t) => {
  const url = databaseUrl(await createDatabase(t))
  const sql = pool(t, url)
  // The test's own connection holding the table lock, idle in its transaction for as long as the test needs.
  const holder = connect(url, { ...TEST_POOL, databasePoolMax: 1 })
  t.teardown(() => holder.end({ timeout: 5 }))
  await migrate(sql, path.join(FIXTURES, 'slow-migrations'))
  const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'))
  await writeFile(path.join(dir, '001_slow.sql'), 'select 1;')
  await writeFile(path.join(dir, '002_concurrent_index.sql'), 'select 1;')
  await writeFile(path.join(dir, '003_add_column.sql'), 'alter table slow add column w int;')
  const heard: string[] = []
  let release!: () => void
  const held = holder.begin(async (tx) => {
    await tx`lock table slow in access share mode`
    await new Promise<void>((resolve) => { release = resolve })
  })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const migrating = migrate(sql, { dir, lockTimeoutMs: 200, log: (message) => heard.push(message) })
  // The lock is held until the migration has given up waiting for it once (or 20 s have passed).
  for (let waited = 0; waited < 20_000 && !heard.includes('migration could not take a lock in time; trying again'); waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  release()
  await held
  t.same(await migrating, ['003_add_column.sql'])
  t.ok(heard.includes('migration could not take a lock in time; trying again'), 'the ALTER gave up waiting at least once')
})

t.test('no-transaction files are split at semicolons that end a line', async (t) => {
  t.same(splitStatements('-- migrate: no-transaction\n-- a comment\ncreate index concurrently a on t (x);\n\ncreate index concurrently b\n  on t (y);\n-- trailing\n'),
    ['-- migrate: no-transaction\n-- a comment\ncreate index concurrently a on t (x)', 'create index concurrently b\n  on t (y)'])
  t.same(splitStatements('create function f() returns int language plpgsql as $$\nbegin\n  return 1;\nend $$;\nselect f();\n'),
    ['create function f() returns int language plpgsql as $$\nbegin\n  return 1;\nend $$', 'select f()'], 'a $$ body is one statement')
})
