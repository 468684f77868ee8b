// The revocation feed for caches outside the service: revocations after a cursor, waiting for the next change (long-poll).
import { EventEmitter, once } from 'node:events'
import * as audit from '../audit/store.js'
import type { Revocation } from '@session-service/client'
import type { Sql } from '../db.js'
import { cursorExpired } from '../errors.js'

export const MAX_REVOCATIONS_PER_ANSWER = 1000
// A safety net under NOTIFY: a lost notification delays an answer by at most this much.
const RECHECK_MS = 1000

export interface RevocationPage {
  revocations: Revocation[]
  nextCursor: string
}

export type RevocationFeed = ReturnType<typeof createRevocationFeed>

// `changes` emits 'change' for every session change notification this node hears.
export function createRevocationFeed({ sql, changes }: { sql: Sql; changes: EventEmitter }) {
  async function startingPoint(since: string | undefined): Promise<string> {
    const { oldest, latest } = await audit.eventIdRange(sql)
    if (since === undefined) return latest
    // Events up to `since` may be pruned, but not the one right after it; and a cursor from the future was never issued.
    const expired = (oldest !== null && BigInt(since) < BigInt(oldest) - 1n) || BigInt(since) > BigInt(latest)
    if (expired) throw cursorExpired()
    return since
  }

  async function read(since: string | undefined, waitSeconds: number, gaveUp: AbortSignal): Promise<RevocationPage> {
    const after = await startingPoint(since)
    if (since === undefined) return { revocations: [], nextCursor: after }
    const deadline = Date.now() + waitSeconds * 1000
    for (;;) {
      const rows = await audit.listRevocations(sql, after, MAX_REVOCATIONS_PER_ANSWER)
      if (rows.length > 0) {
        const revocations = rows.map((row) => ({ cursor: String(row.id), sessionId: row.session_id, type: row.type, reason: row.reason, at: row.at.toISOString() }))
        return { revocations, nextCursor: revocations[revocations.length - 1].cursor }
      }
      const remaining = deadline - Date.now()
      if (remaining <= 0 || gaveUp.aborted) return { revocations: [], nextCursor: after }
      await nextChange(Math.min(remaining, RECHECK_MS), gaveUp)
    }
  }

  // Resolves on the next change, after timeoutMs, or when the caller gives up (client gone, server closing).
  async function nextChange(timeoutMs: number, gaveUp: AbortSignal): Promise<void> {
    await once(changes, 'change', { signal: AbortSignal.any([gaveUp, AbortSignal.timeout(timeoutMs)]) }).catch(() => undefined)
  }

  return { read }
}
