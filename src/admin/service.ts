// Operator views and incident tools: paged listings, the audit log, counts, and mass revocation in bounded batches.
import { createHash } from 'node:crypto'
import type { Sql } from '../db.js'
import * as audit from '../audit/store.js'
import { decodeCursor, encodeCursor } from '../cursor.js'
import { invalidRequest, sweepRunning } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Actor } from '../sessions/service.js'
import { DEFAULT_REVOKE_REASON } from '../sessions/service.js'
import * as store from '../sessions/store.js'
import type { JudgedRow } from '../sessions/types.js'
import * as stats from './stats-store.js'

export const MASS_REVOKE_BATCH = 1000
export const MASS_REVOKE_LOCK_ID = 7_210_003
const MAX_BIGINT = 2n ** 63n - 1n

export { decodeCursor, encodeCursor } from '../cursor.js'

// A sweep's cursor holds the last id it revoked and a digest of its filter and reason, so that it can only continue the
// sweep that issued it (elsewhere it would skip every session before that id).
function sweepScope(filter: store.SessionFilter, reason: string): string {
  const canonical = JSON.stringify([filter.userId ?? null, filter.policy ?? null, filter.createdBefore?.toISOString() ?? null, reason])
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16)
}

function encodeSweepCursor(afterId: string, scope: string): string {
  return encodeCursor('r', `${scope}.${afterId}`)
}

function decodeSweepCursor(cursor: string | undefined, scope: string): string | undefined {
  const key = decodeCursor('r', cursor, (key) => /^[A-Za-z0-9_-]{16}\.s_[0-9A-Z]{26}$/.test(key))
  if (key === undefined) return undefined
  if (!key.startsWith(`${scope}.`)) throw invalidRequest('querystring/cursor was issued for a sweep with another filter or reason')
  return key.slice(scope.length + 1)
}

export interface SweepStep {
  revoked: number
  // Nothing matching is left (as of the last batch); otherwise pass nextCursor to go on.
  done: boolean
  nextCursor: string | null
}

export interface Page<T> {
  items: T[]
  nextCursor: string | null
}

export type AdminService = ReturnType<typeof createAdminService>

export function createAdminService({ sql, metrics, forgetLocally }: { sql: Sql; metrics: Metrics; forgetLocally: (sessionIds: string[]) => void }) {
  async function listSessions(filter: store.SessionFilter, cursor: string | undefined, limit: number): Promise<Page<JudgedRow>> {
    const beforeId = decodeCursor('s', cursor, (key) => /^s_[0-9A-Z]{26}$/.test(key))
    const rows = await store.listSessions(sql, filter, beforeId, limit + 1)
    const hits = rows.filter((row) => row.hit)
    const items = hits.slice(0, limit).map(({ hit: _hit, n: _n, ...row }) => row)
    if (hits.length > limit) return { items, nextCursor: encodeCursor('s', items[items.length - 1].id) }
    // The walk used its budget before filling the page: the next page goes on from where it stopped.
    const stoppedAt = rows.find((row) => row.n === store.LISTING_SCAN_BUDGET)
    return { items, nextCursor: stoppedAt === undefined ? null : encodeCursor('s', stoppedAt.id) }
  }

  async function listEvents(filter: audit.EventFilter, cursor: string | undefined, limit: number): Promise<Page<audit.EventRow>> {
    // An event id is a bigint: 19 digits may still be past its largest value, which Postgres would refuse.
    const beforeId = decodeCursor('e', cursor, (key) => /^[1-9][0-9]{0,18}$/.test(key) && BigInt(key) <= MAX_BIGINT)
    const rows = await audit.listEvents(sql, filter, beforeId, limit + 1)
    const items = rows.slice(0, limit)
    return { items, nextCursor: rows.length > limit ? encodeCursor('e', String(items[items.length - 1].id)) : null }
  }

  // Revokes in batches of MASS_REVOKE_BATCH, each one statement with its events, so an incident sweep never holds a long
  // lock. One sweep at a time in the whole cluster (a session-level advisory lock): a second one, such as a retry of a call
  // still running, is refused with 409 instead of sweeping beside it. It starts no batch once `budgetMs` has passed, and
  // answers where it stopped: done, or a cursor from which the next call goes on.
  async function revokeMatching(filter: store.SessionFilter, reason: string | undefined, actor: Actor, { budgetMs, cursor }: { budgetMs: number; cursor?: string }): Promise<SweepStep> {
    const finalReason = reason ?? DEFAULT_REVOKE_REASON.admin
    const scope = sweepScope(filter, finalReason)
    let afterId = decodeSweepCursor(cursor, scope)
    const deadline = performance.now() + budgetMs
    const connection = await sql.reserve()
    try {
      const [{ locked }] = await connection<{ locked: boolean }[]>`select pg_try_advisory_lock(${MASS_REVOKE_LOCK_ID}) as locked`
      if (!locked) throw sweepRunning()
      try {
        let revoked = 0
        for (;;) {
          const batch = await store.revokeBatch(connection, filter, afterId, MASS_REVOKE_BATCH, finalReason, actor.name)
          forgetLocally(batch.revokedIds)
          revoked += batch.revokedIds.length
          metrics.sessionsRevoked.inc({ reason: finalReason }, batch.revokedIds.length)
          if (batch.picked < MASS_REVOKE_BATCH) return { revoked, done: true, nextCursor: null }
          afterId = batch.lastId!
          if (performance.now() >= deadline) return { revoked, done: false, nextCursor: encodeSweepCursor(afterId, scope) }
        }
      } finally {
        await connection`select pg_advisory_unlock(${MASS_REVOKE_LOCK_ID})`
      }
    } finally {
      connection.release()
    }
  }

  return { listSessions, listEvents, revokeMatching, stats: () => stats.readStatsWithinTimeout(sql) }
}
