// SQL for the audit trail: events are inserted inside the lifecycle transaction they record.
import { REVOCATION_TYPES, type AuditEvent, type EventType } from '@session-service/client'
import type { Db } from '../db.js'

export type { EventType } from '@session-service/client'

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

// One array per column (unnest), so the statement has seven parameters however many events it writes: one parameter per
// value would pass postgres.js's limit of 65,534 at about 9,400 events.
export async function insertEvents(db: Db, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return
  const column = <K extends keyof NewEvent>(key: K) => events.map((event) => event[key])
  await db`
    insert into audit_events (type, session_id, user_id, actor, reason, ip, user_agent)
    select * from unnest(
      ${column('type')}::text[], ${column('sessionId')}::text[], ${column('userId')}::text[], ${column('actor')}::text[],
      ${column('reason')}::text[], ${column('ip')}::text[], ${column('userAgent')}::text[])`
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

// A keyset walk by id: each batch starts after the last id the previous one deleted, so it never re-reads the index entries
// of rows already deleted (dead until vacuum).
export async function deleteEventsBefore(db: Db, retention: number, afterId: string, batchSize: number): Promise<{ count: number; lastId: string | null }> {
  const [deleted] = await db<{ count: number; lastId: string | null }[]>`
    with deleted as (
      delete from audit_events where id in (
        select id from audit_events
         where id > ${afterId} and at < now() - make_interval(secs => ${retention})
         order by id limit ${batchSize})
      returning id)
    select count(*)::int as count, max(id)::text as "lastId" from deleted`
  return deleted
}

export { REVOCATION_TYPES } from '@session-service/client'

export interface RevocationRow {
  id: string
  // The transaction that wrote the event (xid8, as text): the feed's order and cursor.
  xid: string
  at: Date
  type: (typeof REVOCATION_TYPES)[number]
  session_id: string
  reason: string | null
}

export interface FeedWindow {
  // Every transaction of this database below it has ended: no revocation event can still commit below it.
  settled: string
  // No transaction id at or above it had been assigned: a cursor above it was never issued.
  unassigned: string
  // The highest transaction id among pruned revocation events (null: none pruned).
  pruned: string | null
}

// The settled horizon is the oldest transaction still open in this database (the snapshot's xmin would also count
// transactions of other databases on the server, which never write here, and of autovacuum, whose ANALYZE takes a
// transaction id but writes no event); when none is open, the snapshot's xmax. A transaction id the snapshot holds as open
// and pg_stat_activity cannot place counts as open.
export async function feedWindow(db: Db): Promise<FeedWindow> {
  const [window] = await db<FeedWindow[]>`
    with snapshot as (select pg_current_snapshot() as s)
    select coalesce(
             (select min(x) from snapshot, pg_snapshot_xip(snapshot.s) x
               where not exists (
                 select 1 from pg_stat_activity a
                  where a.backend_xid = xid(x)
                    and (a.datid <> (select oid from pg_database where datname = current_database())
                         or a.backend_type = 'autovacuum worker'))),
             (select pg_snapshot_xmax(s) from snapshot))::text as settled,
           (select pg_snapshot_xmax(s) from snapshot)::text as unassigned,
           (select xid from audit_feed_pruned)::text as pruned`
  return window
}

// The revocation feed: events of transactions from \`fromXid\` up to (not including) \`settled\`, in transaction order.
export async function listRevocations(db: Db, fromXid: string, settled: string, limit: number): Promise<RevocationRow[]> {
  return db<RevocationRow[]>`
    select id, xid::text as xid, at, type, session_id, reason from audit_events
     where xid >= ${fromXid}::xid8 and xid < ${settled}::xid8 and type in ('revoked', 'rotated', 'limit_evicted')
     order by xid, id
     limit ${limit}`
}

// The rest of one transaction's revocation events, after a given event.
export async function listRevocationsOfTransaction(db: Db, xid: string, afterId: string): Promise<RevocationRow[]> {
  return db<RevocationRow[]>`
    select id, xid::text as xid, at, type, session_id, reason from audit_events
     where xid = ${xid}::xid8 and id > ${afterId} and type in ('revoked', 'rotated', 'limit_evicted')
     order by xid, id`
}
