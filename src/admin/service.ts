// Operator views and incident tools: paged listings, the audit log, counts, and mass revocation in bounded batches.
import type { Sql } from '../db.js'
import * as audit from '../audit/store.js'
import { invalidRequest } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Actor } from '../sessions/service.js'
import { DEFAULT_REVOKE_REASON, eventFor } from '../sessions/service.js'
import * as store from '../sessions/store.js'
import type { JudgedRow } from '../sessions/types.js'
import * as stats from './stats-store.js'

export const MASS_REVOKE_BATCH = 1000

// Cursors are opaque to clients: the last row's key, base64url-encoded with a kind prefix.
export function encodeCursor(kind: 's' | 'e', key: string): string {
  return Buffer.from(`${kind}:${key}`, 'utf8').toString('base64url')
}

export function decodeCursor(kind: 's' | 'e', cursor: string | undefined, isKey: (key: string) => boolean): string | undefined {
  if (cursor === undefined) return undefined
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8')
  const key = decoded.startsWith(`${kind}:`) ? decoded.slice(2) : ''
  if (!isKey(key)) throw invalidRequest('querystring/cursor is not a cursor from this listing')
  return key
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
    const beforeId = decodeCursor('e', cursor, (key) => /^[1-9][0-9]{0,18}$/.test(key))
    const rows = await audit.listEvents(sql, filter, beforeId, limit + 1)
    const items = rows.slice(0, limit)
    return { items, nextCursor: rows.length > limit ? encodeCursor('e', String(items[items.length - 1].id)) : null }
  }

  // Revokes in batches of MASS_REVOKE_BATCH, each one transaction with its events, so an incident sweep never holds a long lock.
  async function revokeMatching(filter: store.SessionFilter, reason: string | undefined, actor: Actor): Promise<number> {
    const finalReason = reason ?? DEFAULT_REVOKE_REASON.admin
    let total = 0
    for (;;) {
      const batch = await sql.begin(async (tx) => {
        const rows = await store.revokeMatching(tx, filter, finalReason, MASS_REVOKE_BATCH)
        await audit.insertEvents(tx, rows.map((row) => eventFor('revoked', row, actor, finalReason)))
        return rows.map((row) => row.id)
      })
      forgetLocally(batch)
      total += batch.length
      metrics.sessionsRevoked.inc({ reason: finalReason }, batch.length)
      if (batch.length < MASS_REVOKE_BATCH) return total
    }
  }

  return { listSessions, listEvents, revokeMatching, stats: () => stats.readStatsWithinTimeout(sql) }
}
