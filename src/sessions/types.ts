// Session shapes: the row as stored, the public object, and the states a session can be in.
import type { Session, SessionData, SessionState } from '@session-service/client'

// The public shapes are the contract's wire types, defined once in packages/client/src/types.ts.
export type { Session, SessionData, SessionState, SessionStatus } from '@session-service/client'

// The columns every session query returns (never the token hash).
export interface SessionRow {
  id: string
  user_id: string
  policy: string
  data: SessionData
  version: number
  created_at: Date
  last_seen_at: Date
  idle_expires_at: Date
  expires_at: Date
  ip: string | null
  user_agent: string | null
  revoked_at: Date | null
  revoke_reason: string | null
}

// A row read together with the database's verdict on it, so no node clock decides.
export interface JudgedRow extends SessionRow {
  state: SessionState
  touch_due: boolean
}

export function toSession(row: SessionRow): Session {
  return {
    id: row.id,
    userId: row.user_id,
    policy: row.policy,
    data: row.data,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    lastSeenAt: row.last_seen_at.toISOString(),
    idleExpiresAt: row.idle_expires_at.toISOString(),
    expiresAt: row.expires_at.toISOString(),
    ip: row.ip,
    userAgent: row.user_agent,
  }
}
