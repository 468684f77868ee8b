// Applies sql/NNN_name.sql in order, each once, recorded in schema_migrations, under an advisory lock so that nodes starting together take turns.
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
  return files.map((file) => ({ version: Number(MIGRATION_FILE.exec(file)![1]), name: file, file: path.join(dir, file) }))
}

export async function migrate(sql: Sql, dir = SQL_DIR): Promise<string[]> {
  const migrations = await listMigrations(dir)
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`
    await tx`
      create table if not exists schema_migrations (
        version integer primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )`
    const rows = await tx<{ version: number }[]>`select version from schema_migrations`
    const applied = new Set(rows.map((row) => row.version))
    const done: string[] = []
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue
      await tx.unsafe(await readFile(migration.file, 'utf8'))
      await tx`insert into schema_migrations (version, name) values (${migration.version}, ${migration.name})`
      done.push(migration.name)
    }
    return done
  })
}

export async function pendingMigrations(sql: Sql, migrations: Migration[]): Promise<string[]> {
  const [{ exists }] = await sql<{ exists: boolean }[]>`select to_regclass('schema_migrations') is not null as exists`
  if (!exists) return migrations.map((m) => m.name)
  const rows = await sql<{ version: number }[]>`select version from schema_migrations`
  const applied = new Set(rows.map((row) => row.version))
  return migrations.filter((m) => !applied.has(m.version)).map((m) => m.name)
}
