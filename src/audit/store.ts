// SQL for the audit trail: events are inserted inside the lifecycle transaction they record.
import { REVOCATION_TYPES, type AuditEvent, type EventType } from '../client/types.js'
import type { Db } from '../db.js'

export type { EventType } from '../client/types.js'

export interface NewEvent {
  type: EventType
  sessionId: string
  userId: string
  actor: string
  reason: string | null
  ip: string | null
  userAgent: string | null
}

export interface EventRow {
  id: string
  at: Date
  type: EventType
  session_id: string
  user_id: string
  actor: string
  reason: string | null
  ip: string | null
  user_agent: string | null
}


export function toEvent(row: EventRow): AuditEvent {
  return {
    id: String(row.id),
    at: row.at.toISOString(),
    type: row.type,
    sessionId: row.session_id,
    userId: row.user_id,
    actor: row.actor,
    reason: row.reason,
    ip: row.ip,
    userAgent: row.user_agent,
  }
}

export async function insertEvents(db: Db, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return
  const rows = events.map((event) => ({
    type: event.type,
    session_id: event.sessionId,
    user_id: event.userId,
    actor: event.actor,
    reason: event.reason,
    ip: event.ip,
    user_agent: event.userAgent,
  }))
  await db`insert into audit_events ${db(rows, 'type', 'session_id', 'user_id', 'actor', 'reason', 'ip', 'user_agent')}`
}

export interface EventFilter {
  userId?: string
  sessionId?: string
  type?: EventType
  since?: Date
  until?: Date
  actor?: string
  // A CIDR block (parseIpFilter): events whose ip lies inside it.
  ipBlock?: string
}

// Keyset pagination, newest first, by id (ids only grow).
export async function listEvents(db: Db, filter: EventFilter, beforeId: string | undefined, limit: number): Promise<EventRow[]> {
  return db<EventRow[]>`
    select * from audit_events e
     where true
       ${filter.userId === undefined ? db`` : db`and e.user_id = ${filter.userId}`}
       ${filter.sessionId === undefined ? db`` : db`and e.session_id = ${filter.sessionId}`}
       ${filter.type === undefined ? db`` : db`and e.type = ${filter.type}`}
       ${filter.since === undefined ? db`` : db`and e.at >= ${filter.since}`}
       ${filter.until === undefined ? db`` : db`and e.at < ${filter.until}`}
       ${filter.actor === undefined ? db`` : db`and e.actor = ${filter.actor}`}
       ${filter.ipBlock === undefined ? db`` : db`and inet_or_null(e.ip) <<= ${filter.ipBlock}::inet`}
       ${beforeId === undefined ? db`` : db`and e.id < ${beforeId}`}
     order by e.id desc
     limit ${limit}`
}

export async function deleteEventsBefore(db: Db, retention: number, batchSize: number): Promise<number> {
  const rows = await db`
    delete from audit_events where id in (
      select id from audit_events where at < now() - make_interval(secs => ${retention}) order by id limit ${batchSize})
    returning id`
  return rows.length
}

export { REVOCATION_TYPES } from '../client/types.js'

export interface RevocationRow {
  id: string
  at: Date
  type: (typeof REVOCATION_TYPES)[number]
  session_id: string
  reason: string | null
}

// The revocation feed: events that end a token, after a cursor (an event id), oldest first; the primary key serves it.
export async function listRevocations(db: Db, afterId: string, limit: number): Promise<RevocationRow[]> {
  return db<RevocationRow[]>`
    select id, at, type, session_id, reason from audit_events
     where id > ${afterId} and type in ${db([...REVOCATION_TYPES])}
     order by id
     limit ${limit}`
}

export async function eventIdRange(db: Db): Promise<{ oldest: string | null; latest: string }> {
  const [range] = await db<{ oldest: string | null; latest: string }[]>`
    select (select min(id) from audit_events)::text as oldest,
           coalesce((select max(id) from audit_events), 0)::text as latest`
  return range
}
