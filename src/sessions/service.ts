// Session rules: each lifecycle change is one transaction together with its audit event; expiry is judged by the database.
import type { Config, Policy } from '../config.js'
import type { Sql } from '../db.js'
import * as audit from '../audit/store.js'
import type { SessionCache } from './cache.js'
import { invalidRequest, notFound, sessionInvalid, sessionLimit, versionConflict, type AppError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import { checkDataShape, checkDataSize } from './data.js'
import { decodeCursor, encodeCursor } from '../cursor.js'
import { jsonEqual, mergePatch, type Json } from './merge-patch.js'
import * as store from './store.js'
import { hashToken, isWellFormedSessionId, isWellFormedToken, newSessionId, newToken } from './tokens.js'
import type { JudgedRow, SessionData, SessionRow, SessionStatus } from './types.js'
import { toSession } from './types.js'

export interface Actor {
  name: string
}

export interface CreateInput {
  userId: string
  data?: SessionData
  policy?: string
  ip?: string
  userAgent?: string
}

export interface IssuedSession {
  token: string
  row: SessionRow
}

// Bytes of session data (as JSON) one page of a user's sessions may carry: a normal user's list fits in one page, and at
// 16 KiB of data per session a full page is about 1 MiB instead of 16.
export const USER_LIST_DATA_BUDGET = 1024 * 1024

function decodeUserListCursor(cursor: string | undefined): { micros: string; id: string } | undefined {
  const key = decodeCursor('u', cursor, (key) => /^-?[0-9]{1,17}\.s_[0-9A-Z]{26}$/.test(key))
  if (key === undefined) return undefined
  const [micros, id] = key.split('.')
  return { micros, id }
}

// Sessions revoked per statement when a user logs out everywhere or is evicted over a limit.
export const USER_REVOKE_BATCH = 5000

export const DEFAULT_REVOKE_REASON = { logout: 'logout', admin: 'admin', limit: 'session_limit', rotated: 'rotated' } as const

export function eventFor(type: audit.EventType, row: SessionRow, actor: Actor, reason: string | null = null): audit.NewEvent {
  return { type, sessionId: row.id, userId: row.user_id, actor: actor.name, reason, ip: row.ip, userAgent: row.user_agent }
}

function whyInvalid(row: JudgedRow & { rotated?: boolean }): AppError {
  if (row.rotated) return sessionInvalid('revoked', DEFAULT_REVOKE_REASON.rotated)
  if (row.state === 'active') return sessionInvalid('not_found')
  return sessionInvalid(row.state, row.revoke_reason ?? undefined)
}

export type SessionService = ReturnType<typeof createSessionService>

export function createSessionService({ sql, config, metrics, cache }: { sql: Sql; config: Config; metrics: Metrics; cache?: SessionCache }) {
  function policyNamed(name: string | undefined): Policy {
    const policy = config.policies.get(name ?? 'default')
    if (policy === undefined) throw invalidRequest(`unknown policy "${name}"`)
    return policy
  }

  function reject(error: AppError): never {
    const reason = String(error.extra.reason ?? error.code)
    metrics.sessionInvalid.inc({ reason })
    metrics.validations.inc({ outcome: 'invalid', reason })
    throw error
  }

  // Every change that can end a session or alter what validate returns is announced to other nodes by the sessions_changed
  // trigger (sql/007, a NOTIFY delivered on commit, whatever statement made the change) and, once committed, forgotten
  // here before the caller hears of it.
  function forgetLocally(sessionIds: Iterable<string>): void {
    if (cache === undefined) return
    for (const id of sessionIds) cache.evictSession(id)
  }

  // contract: a malformed token is unknown, and costs no database query.
  function tokenHashOf(token: string): Buffer {
    if (!isWellFormedToken(token)) reject(sessionInvalid('not_found'))
    return hashToken(token)
  }

  async function findJudged(tokenHash: Buffer) {
    const row = await store.findByTokenHash(sql, tokenHash, config.touchInterval)
    if (row === undefined) reject(sessionInvalid('not_found'))
    if (row.rotated || row.state !== 'active') reject(whyInvalid(row))
    return row
  }

  async function create(input: CreateInput, actor: Actor): Promise<IssuedSession> {
    const policy = policyNamed(input.policy)
    const data = input.data ?? {}
    checkDataShape(data)
    checkDataSize(data as Json)
    const token = newToken()
    const newRow: store.NewSessionRow = {
      id: newSessionId(),
      tokenHash: hashToken(token),
      userId: input.userId,
      policy: policy.name,
      data,
      idleTimeout: policy.idleTimeout,
      absoluteTimeout: policy.absoluteTimeout,
      ip: input.ip ?? null,
      userAgent: input.userAgent ?? null,
    }
    const evictedIds: string[] = []
    // Without a per-user limit there is nothing to decide under a lock: one statement is the whole transaction.
    const row = policy.maxPerUser === 0 ? await store.insertSessionWithEvent(sql, newRow, actor.name) : await sql.begin(async (tx) => {
      await store.lockUser(tx, input.userId)
      const active = await store.countActiveForUser(tx, input.userId, policy.name)
      if (active >= policy.maxPerUser) {
        if (policy.onLimit === 'reject') throw sessionLimit(policy.maxPerUser)
        // Usually one; many only where the limit was lowered below what a user holds: then in bounded statements.
        for (let due = active - policy.maxPerUser + 1; due > 0; due -= USER_REVOKE_BATCH) {
          const evicted = await store.evictLeastRecentlySeen(tx, input.userId, policy.name, Math.min(due, USER_REVOKE_BATCH), DEFAULT_REVOKE_REASON.limit, actor.name)
          evictedIds.push(...evicted)
        }
      }
      return store.insertSessionWithEvent(tx, newRow, actor.name)
    })
    forgetLocally(evictedIds)
    if (evictedIds.length > 0) metrics.sessionsEvicted.inc({ policy: policy.name }, evictedIds.length)
    metrics.sessionsCreated.inc({ policy: policy.name })
    return { token, row }
  }

  // contract: a validate may skip the write while lastSeenAt is younger than SESSION_TOUCH_INTERVAL.
  async function validate(token: string, opts: { touch: boolean }): Promise<SessionRow> {
    const tokenHash = tokenHashOf(token)
    const key = tokenHash.toString('base64')
    const hit = cache?.get(key)
    if (hit !== undefined && !(opts.touch && hit.touchDue)) {
      metrics.validations.inc({ outcome: 'valid', reason: 'cache' })
      return hit.row
    }
    const epoch = cache?.readEpoch() ?? 0
    const found = await findJudged(tokenHash)
    let row: SessionRow = found
    // Measured against the database's clock; a millisecond less covers the microseconds that Date drops.
    const dbNow = found.db_now.getTime()
    let times = {
      msUntilEnd: Math.min(found.expires_at.getTime(), found.idle_expires_at.getTime()) - dbNow - 1,
      msUntilTouchDue: found.last_seen_at.getTime() + config.touchInterval * 1000 - dbNow - 1,
    }
    if (opts.touch && found.touch_due) {
      row = await touchActive(found.id)
      // Both deadlines of the touched row are measured from its new lastSeenAt, which is the database's now().
      times = { msUntilEnd: Math.min(row.idle_expires_at.getTime(), row.expires_at.getTime()) - row.last_seen_at.getTime(), msUntilTouchDue: config.touchInterval * 1000 }
    }
    cache?.set(key, row, times, epoch)
    metrics.validations.inc({ outcome: 'valid', reason: '' })
    return row
  }

  async function touch(token: string): Promise<SessionRow> {
    const found = await findJudged(tokenHashOf(token))
    return touchActive(found.id)
  }

  async function touchActive(id: string): Promise<SessionRow> {
    const touched = await store.touch(sql, id)
    if (touched !== undefined) return touched
    // It ended between the read and the write: say why, as the database now sees it.
    const now = await store.findById(sql, id)
    return reject(now === undefined ? sessionInvalid('not_found') : whyInvalid(now))
  }

  async function rotate(token: string, actor: Actor): Promise<IssuedSession> {
    const oldHash = tokenHashOf(token)
    const newTokenValue = newToken()
    const row = await sql.begin(async (tx) => {
      const rotated = await store.replaceToken(tx, oldHash, hashToken(newTokenValue))
      if (rotated === undefined) {
        const current = await store.findByTokenHash(tx, oldHash, config.touchInterval)
        return reject(current === undefined ? sessionInvalid('not_found') : whyInvalid(current))
      }
      await store.insertRotatedToken(tx, oldHash, rotated.id)
      await audit.insertEvents(tx, [eventFor('rotated', rotated, actor, DEFAULT_REVOKE_REASON.rotated)])
      return rotated
    })
    forgetLocally([row.id])
    return { token: newTokenValue, row }
  }

  // contract: revoking an unknown, malformed or already ended token changes nothing and is not an error.
  async function revokeByToken(token: string, reason: string | undefined, actor: Actor): Promise<SessionRow | undefined> {
    if (!isWellFormedToken(token)) return undefined
    const finalReason = reason ?? DEFAULT_REVOKE_REASON.logout
    const revoked = await store.revokeByTokenHash(sql, hashToken(token), finalReason, actor.name)
    if (revoked !== undefined) {
      forgetLocally([revoked.id])
      metrics.sessionsRevoked.inc({ reason: finalReason })
    }
    return revoked
  }

  async function getById(id: string): Promise<SessionStatus> {
    const row = isWellFormedSessionId(id) ? await store.findById(sql, id) : undefined
    if (row === undefined) throw notFound('no session with this id')
    const status: SessionStatus = { session: toSession(row), state: row.state }
    if (row.revoked_at !== null) {
      status.revokedAt = row.revoked_at.toISOString()
      status.revokeReason = row.revoke_reason ?? undefined
    }
    return status
  }

  async function patchData(id: string, patch: SessionData, ifMatch: ((version: number) => boolean) | undefined, actor: Actor): Promise<SessionRow> {
    checkDataShape(patch)
    if (!isWellFormedSessionId(id)) throw notFound('no active session with this id')
    const patched = await sql.begin(async (tx) => {
      const row = await store.findById(tx, id, { forUpdate: true })
      if (row === undefined || row.state !== 'active') throw notFound('no active session with this id')
      if (ifMatch !== undefined && !ifMatch(row.version)) throw versionConflict(row.version)
      const next = mergePatch(row.data as Json, patch as Json) as SessionData
      if (jsonEqual(next as Json, row.data as Json)) return row
      checkDataSize(next as Json)
      const updated = await store.updateData(tx, id, next)
      await audit.insertEvents(tx, [eventFor('data_updated', updated, actor)])
      return updated
    })
    forgetLocally([id])
    return patched
  }

  async function revokeById(id: string, reason: string | undefined, actor: Actor): Promise<void> {
    if (!isWellFormedSessionId(id)) throw notFound('no session with this id')
    const finalReason = reason ?? DEFAULT_REVOKE_REASON.admin
    const revoked = await sql.begin(async (tx) => {
      const row = await store.revokeById(tx, id, finalReason)
      if (row === undefined) {
        if ((await store.findById(tx, id)) === undefined) throw notFound('no session with this id')
        return undefined
      }
      await audit.insertEvents(tx, [eventFor('revoked', row, actor, finalReason)])
      return row
    })
    if (revoked !== undefined) {
      forgetLocally([revoked.id])
      metrics.sessionsRevoked.inc({ reason: finalReason })
    }
  }

  // contract: a page holds at most `limit` sessions, and past the first no more than USER_LIST_DATA_BUDGET bytes of data;
  // nextCursor is null on the last page.
  async function listForUser(userId: string, { limit, cursor }: { limit: number; cursor?: string }): Promise<{ items: SessionRow[]; nextCursor: string | null }> {
    const before = decodeUserListCursor(cursor)
    const rows = await store.listActiveForUser(sql, userId, before, limit, USER_LIST_DATA_BUDGET)
    const kept = rows.slice(0, limit)
    const cut = kept.findIndex((row) => !row.within_budget)
    const items = cut === -1 ? kept : kept.slice(0, cut)
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > items.length ? encodeCursor('u', `${last.created_micros}.${last.id}`) : null }
  }

  // contract: log out everywhere is one transaction whatever the number of sessions: all of them end, or none does. It runs
  // as bounded batches inside that transaction, so no statement grows with the user's session count.
  async function revokeAllForUser(userId: string, exceptId: string | undefined, reason: string | undefined, actor: Actor): Promise<number> {
    const finalReason = reason ?? DEFAULT_REVOKE_REASON.admin
    const revoked = await sql.begin(async (tx) => {
      const ids: string[] = []
      let afterId: string | undefined
      for (;;) {
        const batch = await store.revokeBatch(tx, { userId, exceptId }, afterId, USER_REVOKE_BATCH, finalReason, actor.name)
        ids.push(...batch.revokedIds)
        if (batch.picked < USER_REVOKE_BATCH) return ids
        afterId = batch.lastId!
      }
    })
    forgetLocally(revoked)
    metrics.sessionsRevoked.inc({ reason: finalReason }, revoked.length)
    return revoked.length
  }

  return { create, validate, touch, rotate, revokeByToken, getById, patchData, revokeById, listForUser, revokeAllForUser, forgetLocally }
}
