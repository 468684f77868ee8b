// SQL for operator statistics: aggregates over the sessions table, and creations per day from the audit log's time index.
import type { AgeBucket as Bucket, Stats } from '@session-service/client'
import type { Db, Sql } from '../db.js'

// Bucket bounds in seconds: each bucket counts ages from the previous bound (or 0) up to, not including, its own.
const AGE_BOUNDS = [60, 300, 900, 3600, 4 * 3600, 8 * 3600, 86400, 7 * 86400]

function toBuckets(rows: Array<{ bucket: number; count: number }>): Bucket[] {
  const counts = new Map(rows.map((row) => [row.bucket, row.count]))
  return [...AGE_BOUNDS, null].map((lessThan, i) => ({ lessThan, count: counts.get(i) ?? 0 }))
}

// Six aggregate queries; together they read the sessions table several times (about 2.5 s at a million sessions here),
// so they run in one transaction under this statement timeout instead of the service's per-statement one.
export const STATS_STATEMENT_TIMEOUT_MS = 120_000

export async function readStatsWithinTimeout(sql: Sql): Promise<Stats> {
  return sql.begin(async (tx) => {
    await tx`select set_config('statement_timeout', ${String(STATS_STATEMENT_TIMEOUT_MS)}, true)`
    return readStats(tx)
  })
}

export async function readStats(db: Db): Promise<Stats> {
  const [counts] = await db<Array<{ active: number; revoked: number; expired: number; idle_timeout: number; active_users: number }>>`
    select
      count(*) filter (where revoked_at is null and now() < expires_at and now() < idle_expires_at)::int as active,
      count(*) filter (where revoked_at is not null)::int as revoked,
      count(*) filter (where revoked_at is null and now() >= expires_at)::int as expired,
      count(*) filter (where revoked_at is null and now() < expires_at and now() >= idle_expires_at)::int as idle_timeout,
      count(distinct user_id) filter (where revoked_at is null and now() < expires_at and now() < idle_expires_at)::int as active_users
    from sessions`
  const byPolicy = await db<Array<{ policy: string; count: number }>>`
    select policy, count(*)::int as count from sessions
     where revoked_at is null and now() < expires_at and now() < idle_expires_at
     group by policy order by policy`
  // width_bucket(age, bounds) is the index of the first bound above the age: 0 .. AGE_BOUNDS.length.
  const sessionAge = await db<Array<{ bucket: number; count: number }>>`
    select width_bucket(extract(epoch from now() - created_at)::float8, ${AGE_BOUNDS}::float8[]) as bucket, count(*)::int as count
      from sessions where revoked_at is null and now() < expires_at and now() < idle_expires_at group by 1`
  const idleAge = await db<Array<{ bucket: number; count: number }>>`
    select width_bucket(extract(epoch from now() - last_seen_at)::float8, ${AGE_BOUNDS}::float8[]) as bucket, count(*)::int as count
      from sessions where revoked_at is null and now() < expires_at and now() < idle_expires_at group by 1`
  const perDay = await db<Array<{ day: string; count: number }>>`
    select to_char(date_trunc('day', at at time zone 'UTC'), 'YYYY-MM-DD') as day, count(*)::int as count
      from audit_events where type = 'created' and at >= now() - interval '30 days'
     group by 1 order by 1`
  const byReason = await db<Array<{ reason: string; count: number }>>`
    select revoke_reason as reason, count(*)::int as count from sessions where revoked_at is not null group by 1 order by 1`
  return {
    active: counts.active,
    revoked: counts.revoked,
    expired: counts.expired,
    idleTimeout: counts.idle_timeout,
    activeUsers: counts.active_users,
    byPolicy: Object.fromEntries(byPolicy.map((row) => [row.policy, row.count])),
    sessionAge: toBuckets(sessionAge),
    idleAge: toBuckets(idleAge),
    createdPerDay: perDay,
    revokedByReason: Object.fromEntries(byReason.map((row) => [row.reason, row.count])),
  }
}
