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

// A cursor is a transaction id (xid8) C meaning: every revocation written by a transaction below C has been served. The
// feed serves only transactions below the settled horizon (see audit.feedWindow), so no event can later commit behind a
// cursor already handed out, and a page never ends inside a transaction unless that transaction alone fills it.
export function createRevocationFeed({ sql, changes }: { sql: Sql; changes: EventEmitter }) {
  async function settledWindow(since: string | undefined) {
    const window = await audit.feedWindow(sql)
    if (since === undefined) return window
    // A revocation at or above the cursor was pruned before it was served; or the cursor was never issued.
    const missed = window.pruned !== null && BigInt(since) <= BigInt(window.pruned)
    if (missed || BigInt(since) > BigInt(window.unassigned)) throw cursorExpired()
    return window
  }

  async function page(since: string, settled: string): Promise<RevocationPage | undefined> {
    let rows = await audit.listRevocations(sql, since, settled, MAX_REVOCATIONS_PER_ANSWER)
    if (rows.length === 0) return undefined
    let nextCursor = String(BigInt(rows[rows.length - 1].xid) + 1n)
    if (rows.length === MAX_REVOCATIONS_PER_ANSWER) {
      const lastXid = rows[rows.length - 1].xid
      if (rows[0].xid === lastXid) {
        // One transaction fills the page: serve all of it, so the cursor can move past it.
        rows = rows.concat(await audit.listRevocationsOfTransaction(sql, lastXid, rows[rows.length - 1].id))
      } else {
        // The last transaction may go on past the page: serve it whole next time.
        rows = rows.filter((row) => row.xid !== lastXid)
        nextCursor = lastXid
      }
    }
    // A revocation's own cursor resumes at its transaction: its events may be served again, never skipped.
    const revocations = rows.map((row) => ({ cursor: row.xid, sessionId: row.session_id, type: row.type, reason: row.reason, at: row.at.toISOString() }))
    return { revocations, nextCursor }
  }

  async function read(since: string | undefined, waitSeconds: number, gaveUp: AbortSignal): Promise<RevocationPage> {
    const first = await settledWindow(since)
    if (since === undefined) return { revocations: [], nextCursor: first.settled }
    const deadline = Date.now() + waitSeconds * 1000
    let window = first
    for (let heldBack = 0; ; ) {
      const found = await page(since, window.settled)
      if (found !== undefined) return found
      const remaining = deadline - Date.now()
      if (remaining <= 0 || gaveUp.aborted) return { revocations: [], nextCursor: since }
      // While a transaction is open below the horizon (or one just ended whose database could not be told), its
      // notification may already have come: look again soon, backing off to the usual recheck.
      heldBack = window.settled === window.unassigned ? 0 : heldBack + 1
      const recheckMs = heldBack === 0 ? RECHECK_MS : Math.min(RECHECK_MS, 25 * 2 ** heldBack)
      await nextChange(Math.min(remaining, recheckMs), gaveUp)
      if (gaveUp.aborted) return { revocations: [], nextCursor: since }
      window = await audit.feedWindow(sql)
    }
  }

  // Resolves on the next change, after timeoutMs, or when the caller gives up (client gone, server closing).
  async function nextChange(timeoutMs: number, gaveUp: AbortSignal): Promise<void> {
    await once(changes, 'change', { signal: AbortSignal.any([gaveUp, AbortSignal.timeout(timeoutMs)]) }).catch(() => undefined)
  }

  return { read }
}
