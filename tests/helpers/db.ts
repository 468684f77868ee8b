// A fresh, migrated database per test file on the server named by DATABASE_URL, dropped when the file ends.
import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { connect, type Sql } from '../../src/db.js'
import { migrate } from '../../src/migrate.js'

type Tap = { teardown(fn: () => unknown): void }

export function serverUrl(): string {
  const url = process.env.DATABASE_URL
  if (url === undefined || url === '') {
    throw new Error('DATABASE_URL is not set: run the suite with `npm test` (it starts an embedded database) or set DATABASE_URL')
  }
  return url
}

export function databaseUrl(name: string): string {
  const url = new URL(serverUrl())
  url.pathname = `/${name}`
  return url.toString()
}

export const POOL = { databasePoolMax: 10, databaseConnectTimeout: 5, databaseStatementTimeoutMs: 5000 }
// The tests' own connections (set-up fills of 100,000 rows, assertions) are not service work: on a busy machine a fill
// may take longer than the service's statement timeout.
export const TEST_POOL = { ...POOL, databaseStatementTimeoutMs: 120_000 }

// Creates an empty database and returns its name; the caller migrates (or not).
export async function createDatabase(t: Tap): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${name}`)
  await admin.end()
  t.teardown(async () => {
    const dropper = postgres(serverUrl(), { max: 1, onnotice: () => {} })
    await dropper.unsafe(`drop database if exists ${name} with (force)`)
    await dropper.end()
  })
  return name
}

export async function freshDatabase(t: Tap): Promise<{ name: string; url: string; sql: Sql }> {
  const name = await createDatabase(t)
  const url = databaseUrl(name)
  const sql = connect(url, TEST_POOL)
  await migrate(sql)
  return { name, url, sql }
}

// Moves a session back in time in the database, as if `seconds` had passed since its last activity and creation.
export async function ageSession(sql: Sql, id: string, { seconds }: { seconds: number }): Promise<void> {
  await sql`
    update sessions set
      created_at = created_at - make_interval(secs => ${seconds}),
      last_seen_at = last_seen_at - make_interval(secs => ${seconds}),
      idle_expires_at = idle_expires_at - make_interval(secs => ${seconds}),
      expires_at = expires_at - make_interval(secs => ${seconds})
    where id = ${id}`
}

// Sessions s_<hex of g> for g in [from, to], revoked 60 days ago: past any retention the tests use.
export async function insertLongEndedSessions(sql: Sql, from: number, to: number): Promise<void> {
  await sql`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, created_at, last_seen_at, idle_expires_at, expires_at, revoked_at, revoke_reason)
    select 's_' || lpad(upper(to_hex(g)), 26, '0'), sha256(('ended' || g)::bytea), 'u' || (g % 97), 'default', 60,
           now() - interval '90 days', now() - interval '90 days', now() - interval '89 days', now() - interval '80 days',
           now() - interval '60 days', 'logout'
      from generate_series(${from}::int, ${to}::int) g`
}

// Sessions s_<hex of g> for g in [from, to], active for another hour.
export async function insertLiveSessions(sql: Sql, from: number, to: number): Promise<void> {
  await sql`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, idle_expires_at, expires_at)
    select 's_' || lpad(upper(to_hex(g)), 26, '0'), sha256(('live' || g)::bytea), 'u' || (g % 97), 'default', 3600,
           now() + interval '1 hour', now() + interval '1 day'
      from generate_series(${from}::int, ${to}::int) g`
}
