// Applies sql/NNN_name.sql in order, each once, recorded in schema_migrations, under an advisory lock so that nodes starting
// together take turns. It runs on one connection of its own, without the service's statement timeout (an index build on a
// large table takes minutes), one transaction per file; a file whose first line is `-- migrate: no-transaction` runs
// statement by statement outside any transaction, so that it may CREATE INDEX CONCURRENTLY.
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Sql } from './db.js'

export const SQL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'sql')
const MIGRATION_LOCK_ID = 7_210_001
const MIGRATION_FILE = /^(\d{3,})_[a-z0-9_]+\.sql$/

export interface Migration { version: number; name: string; file: string }

export async function listMigrations(dir = SQL_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => MIGRATION_FILE.test(file)).sort()
  const migrations = files.map((file) => ({ version: Number(MIGRATION_FILE.exec(file)![1]), name: file, file: path.join(dir, file) }))
  // Two files of one number: the second would be skipped as applied on a database that has the first, or fail on the
  // version's primary key on a new one. Refused before anything runs.
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version === migrations[i - 1].version) {
      throw new Error(`two migrations share the number ${migrations[i].version}: ${migrations[i - 1].name} and ${migrations[i].name}`)
    }
  }
  return migrations
}

// How long a migration statement may wait for a table lock before it gives up and tries again: while a DDL statement waits,
// every query on that table queues behind it, so it must not wait long.
export const MIGRATION_LOCK_TIMEOUT_MS = 5000
const LOCK_ATTEMPTS = 5
// How often a node waiting for another node's migration asks for the lock again.
const LOCK_POLL_MS = 250
const NO_TRANSACTION = /^--\s*migrate:\s*no-transaction\s*$/
const LOCK_NOT_AVAILABLE = '55P03'

export interface MigrateOptions {
  dir?: string
  lockTimeoutMs?: number
  // Told when this node waits for another node's migration, and before each file.
  log?: (message: string, fields?: Record<string, unknown>) => void
}

// Statements of a no-transaction file: each ends with a semicolon at the end of a line (outside a $$-quoted body);
// comment-only pieces are dropped.
export function splitStatements(text: string): string[] {
  const statements: string[] = []
  let current: string[] = []
  let inBody = false
  for (const line of text.split('\n')) {
    current.push(line)
    if (((line.match(/\$\$/g) ?? []).length) % 2 === 1) inBody = !inBody
    if (!inBody && /;[ \t]*$/.test(line)) {
      statements.push(current.join('\n').replace(/;[ \t]*$/, '').trim())
      current = []
    }
  }
  statements.push(current.join('\n').trim())
  return statements.filter((piece) => piece.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('--')))
}

export async function migrate(sql: Sql, dirOrOptions: string | MigrateOptions = {}): Promise<string[]> {
  const options = typeof dirOrOptions === 'string' ? { dir: dirOrOptions } : dirOrOptions
  const migrations = await listMigrations(options.dir)
  const log = options.log ?? (() => {})
  const connection = await sql.reserve()
  try {
    // Session settings on this one connection: no statement timeout, and no waiting for the advisory lock to time out.
    await connection`select set_config('statement_timeout', '0', false), set_config('lock_timeout', '0', false),
                            set_config('idle_in_transaction_session_timeout', '0', false)`
    // Tries in short statements, never one that waits: a waiting statement holds a snapshot, and CREATE INDEX CONCURRENTLY
    // in the node holding the lock waits for every older snapshot to end, which would be a deadlock.
    for (let attempt = 0; ; attempt++) {
      const [{ locked }] = await connection<{ locked: boolean }[]>`select pg_try_advisory_lock(${MIGRATION_LOCK_ID}) as locked`
      if (locked) break
      if (attempt === 0) log('waiting for another node to finish migrating')
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS))
    }
    try {
      await connection`select set_config('lock_timeout', ${`${options.lockTimeoutMs ?? MIGRATION_LOCK_TIMEOUT_MS}ms`}, false)`
      await connection`
        create table if not exists schema_migrations (
          version integer primary key,
          name text not null,
          applied_at timestamptz not null default now()
        )`
      const rows = await connection<{ version: number }[]>`select version from schema_migrations`
      const applied = new Set(rows.map((row) => row.version))
      const done: string[] = []
      for (const migration of migrations) {
        if (applied.has(migration.version)) continue
        const text = await readFile(migration.file, 'utf8')
        const transactional = !NO_TRANSACTION.test(text.split('\n', 1)[0])
        log('applying migration', { migration: migration.name, transactional })
        await withLockRetries(log, migration.name, async () => {
          if (transactional) {
            await connection.unsafe('begin')
            try {
              await connection.unsafe(text)
              await connection`insert into schema_migrations (version, name) values (${migration.version}, ${migration.name})`
              await connection.unsafe('commit')
            } catch (err) {
              await connection.unsafe('rollback')
              throw err
            }
          } else {
            // Each statement commits on its own: write them so that running the file again after a failure is safe.
            for (const statement of splitStatements(text)) await connection.unsafe(statement)
            await connection`insert into schema_migrations (version, name) values (${migration.version}, ${migration.name})`
          }
        })
        done.push(migration.name)
      }
      return done
    } finally {
      await connection`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`
    }
  } finally {
    // Back to the pool with the service's own timeouts (the values the connection started with).
    await connection`reset statement_timeout; reset lock_timeout; reset idle_in_transaction_session_timeout`.simple().catch(() => {})
    connection.release()
  }
}

// A statement that could not get its table lock within the lock timeout gave up so as not to hold up the queries queued
// behind it; the file is tried again a few times before the migration fails.
async function withLockRetries(log: NonNullable<MigrateOptions['log']>, name: string, run: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run()
    } catch (err) {
      if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE || attempt >= LOCK_ATTEMPTS) throw err
      log('migration could not take a lock in time; trying again', { migration: name, attempt })
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt))
    }
  }
}

export async function pendingMigrations(sql: Sql, migrations: Migration[]): Promise<string[]> {
  const [{ exists }] = await sql<{ exists: boolean }[]>`select to_regclass('schema_migrations') is not null as exists`
  if (!exists) return migrations.map((m) => m.name)
  const rows = await sql<{ version: number }[]>`select version from schema_migrations`
  const applied = new Set(rows.map((row) => row.version))
  return migrations.filter((m) => !applied.has(m.version)).map((m) => m.name)
}
