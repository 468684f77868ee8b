// SQL for sessions and rotated tokens, one function per statement; every "still valid?" is answered by now() in the query.
import type { Db } from '../db.js'
import type { JudgedRow, SessionData, SessionRow, SessionState } from './types.js'

export interface NewSessionRow {
  id: string
  tokenHash: Buffer
  userId: string
  policy: string
  data: SessionData
  idleTimeout: number
  absoluteTimeout: number
  ip: string | null
  userAgent: string | null
}

// What a SessionRow holds; never the token hash.
const sessionColumns = (db: Db) => db`
  s.id, s.user_id, s.policy, s.data, s.version, s.created_at, s.last_seen_at, s.idle_expires_at, s.expires_at,
  s.ip, s.user_agent, s.revoked_at, s.revoke_reason`

// The database's verdict on a row; the absolute lifetime wins over the idle timeout when both are over.
const judge = (db: Db, touchInterval = 0) => db`
  case
    when s.revoked_at is not null then 'revoked'
    when now() >= s.expires_at then 'expired'
    when now() >= s.idle_expires_at then 'idle_timeout'
    else 'active'
  end as state,
  s.last_seen_at <= now() - make_interval(secs => ${touchInterval}) as touch_due`

const isActive = (db: Db) => db`s.revoked_at is null and now() < s.expires_at and now() < s.idle_expires_at`

// The session and its "created" audit event in one statement: atomic without BEGIN/COMMIT, one round trip.
export async function insertSessionWithEvent(db: Db, row: NewSessionRow, actor: string): Promise<SessionRow> {
  const [inserted] = await db<SessionRow[]>`
    with s as (
      insert into sessions (id, token_hash, user_id, policy, data, idle_timeout, idle_expires_at, expires_at, ip, user_agent)
      values (
        ${row.id}, ${row.tokenHash}, ${row.userId}, ${row.policy}, ${db.json(row.data as never)}, ${row.idleTimeout},
        now() + make_interval(secs => ${row.idleTimeout}),
        now() + make_interval(secs => ${row.absoluteTimeout}),
        ${row.ip}, ${row.userAgent}
      )
      returning *
    ), created_event as (
      insert into audit_events (type, session_id, user_id, actor, reason, ip, user_agent)
      select 'created', s.id, s.user_id, ${actor}, null, s.ip, s.user_agent from s
    )
    select ${sessionColumns(db)} from s`
  return inserted
}

export interface TokenLookup extends JudgedRow {
  // A token that a rotation replaced.
  rotated: boolean
  // The database's now(), from which the node cache measures how long it may keep the row.
  db_now: Date
}

// The hot path: one read of the unique token index. Only a token found nowhere there is looked for among rotated tokens,
// so a current token never opens rotated_tokens.
export async function findByTokenHash(db: Db, tokenHash: Buffer, touchInterval: number): Promise<TokenLookup | undefined> {
  const [current] = await db<TokenLookup[]>`
    select ${sessionColumns(db)}, ${judge(db, touchInterval)}, false as rotated, now() as db_now
      from sessions s where s.token_hash = ${tokenHash}`
  if (current !== undefined) return current
  const [replaced] = await db<TokenLookup[]>`
    select ${sessionColumns(db)}, ${judge(db, touchInterval)}, true as rotated, now() as db_now
      from rotated_tokens r join sessions s on s.id = r.session_id
     where r.token_hash = ${tokenHash}`
  return replaced
}

export async function findById(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<JudgedRow | undefined> {
  const [row] = await db<JudgedRow[]>`
    select s.*, ${judge(db)} from sessions s where s.id = ${id} ${opts.forUpdate ? db`for update` : db``}`
  return row
}

export async function touch(db: Db, id: string): Promise<SessionRow | undefined> {
  const [row] = await db<SessionRow[]>`
    update sessions s
       set last_seen_at = now(), idle_expires_at = now() + make_interval(secs => s.idle_timeout)
     where s.id = ${id} and ${isActive(db)}
    returning ${sessionColumns(db)}`
  return row
}

// Conditional on the old hash: of many concurrent rotations of one token, exactly one matches.
export async function replaceToken(db: Db, oldHash: Buffer, newHash: Buffer): Promise<SessionRow | undefined> {
  const [row] = await db<SessionRow[]>`
    update sessions s
       set token_hash = ${newHash}, last_seen_at = now(), idle_expires_at = now() + make_interval(secs => s.idle_timeout)
     where s.token_hash = ${oldHash} and ${isActive(db)}
    returning *`
  return row
}

export async function insertRotatedToken(db: Db, tokenHash: Buffer, sessionId: string): Promise<void> {
  await db`insert into rotated_tokens (token_hash, session_id) values (${tokenHash}, ${sessionId})`
}

// How long after a rotation a logout with the replaced token still ends the session: a logout sent with the old token
// while the rotation was in flight must not leave the session alive.
export const LOGOUT_ROTATED_GRACE_SECONDS = 10

// Logout: the revocation and its audit event in one statement (one implicit transaction; the sessions_changed trigger's
// NOTIFY is delivered only if it commits), instead of five round trips. The session is found by its current token or by
// one rotated away within the grace period, then revoked by id: a rotation committing meanwhile does not make it miss.
export async function revokeByTokenHash(db: Db, tokenHash: Buffer, reason: string, actor: string): Promise<SessionRow | undefined> {
  const [row] = await db<SessionRow[]>`
    with target as (
      select s.id from sessions s where s.token_hash = ${tokenHash}
      union all
      select r.session_id from rotated_tokens r
       where r.token_hash = ${tokenHash} and r.rotated_at > now() - make_interval(secs => ${LOGOUT_ROTATED_GRACE_SECONDS})
      limit 1
    ), revoked as (
      update sessions s set revoked_at = now(), revoke_reason = ${reason}
       where s.id = (select id from target) and ${isActive(db)}
      returning s.*
    ), revoked_event as (
      insert into audit_events (type, session_id, user_id, actor, reason, ip, user_agent)
      select 'revoked', s.id, s.user_id, ${actor}, ${reason}, s.ip, s.user_agent from revoked s
    )
    select ${sessionColumns(db)} from revoked s`
  return row
}

export async function revokeById(db: Db, id: string, reason: string): Promise<SessionRow | undefined> {
  const [row] = await db<SessionRow[]>`
    update sessions s set revoked_at = now(), revoke_reason = ${reason}
     where s.id = ${id} and ${isActive(db)}
    returning *`
  return row
}

// Serialises every limit decision for one user; the two-key form keeps it apart from single-key locks (migrations, prune).
export async function lockUser(db: Db, userId: string): Promise<void> {
  await db`select pg_advisory_xact_lock(1, hashtext(${userId}))`
}

export async function countActiveForUser(db: Db, userId: string, policy: string): Promise<number> {
  const [{ count }] = await db<{ count: number }[]>`
    select count(*)::int as count from sessions s where s.user_id = ${userId} and s.policy = ${policy} and ${isActive(db)}`
  return count
}

// Eviction over the per-user limit: the revocations and their limit_evicted events in one statement, so its parameters are a
// fixed handful however many sessions a lowered limit evicts at once.
export async function evictLeastRecentlySeen(db: Db, userId: string, policy: string, howMany: number, reason: string, actor: string): Promise<string[]> {
  const rows = await db<{ id: string }[]>`
    with evicted as (
      update sessions set revoked_at = now(), revoke_reason = ${reason}
       where id in (
         select s.id from sessions s
          where s.user_id = ${userId} and s.policy = ${policy} and ${isActive(db)}
          order by s.last_seen_at, s.created_at, s.id
          limit ${howMany})
      returning id, user_id, ip, user_agent
    ), evicted_event as (
      insert into audit_events (type, session_id, user_id, actor, reason, ip, user_agent)
      select 'limit_evicted', e.id, e.user_id, ${actor}, ${reason}, e.ip, e.user_agent from evicted e
    )
    select id from evicted`
  return rows.map((row) => row.id)
}

export async function updateData(db: Db, id: string, data: SessionData): Promise<SessionRow> {
  const [row] = await db<SessionRow[]>`
    update sessions set data = ${db.json(data as never)}, version = version + 1 where id = ${id} returning *`
  return row
}

export interface UserPageRow extends SessionRow {
  // created_at in whole microseconds since the epoch (exact, unlike a Date): the page's keyset position.
  created_micros: string
  // The row's data fits the page's byte budget together with the rows before it (the first row always does).
  within_budget: boolean
}

// A page of a user's active sessions, newest first by creation, after a (created_at, id) keyset position. `limit + 1`
// rows are read; only those whose data, summed in page order, stays within `dataBudget` bytes carry their data out of the
// database, so one answer is bounded by its limit and by its budget whatever the sessions hold.
export async function listActiveForUser(db: Db, userId: string, before: { micros: string; id: string } | undefined, limit: number, dataBudget: number): Promise<UserPageRow[]> {
  return db<UserPageRow[]>`
    with page as (
      select s.* from sessions s
       where s.user_id = ${userId} and ${isActive(db)}
         ${before === undefined ? db`` : db`and (s.created_at, s.id) < (timestamptz 'epoch' + ${before.micros}::bigint * interval '1 microsecond', ${before.id})`}
       order by s.created_at desc, s.id desc
       limit ${limit + 1}
    ), sized as (
      select p.id, coalesce(sum(octet_length(p.data::text)) over (order by p.created_at desc, p.id desc rows between unbounded preceding and 1 preceding), 0) as bytes_before
        from page p
    )
    select s.id, s.user_id, s.policy, case when z.bytes_before < ${dataBudget} then s.data end as data, s.version, s.created_at,
           s.last_seen_at, s.idle_expires_at, s.expires_at, s.ip, s.user_agent, s.revoked_at, s.revoke_reason,
           (extract(epoch from s.created_at) * 1000000)::bigint::text as created_micros,
           z.bytes_before < ${dataBudget} as within_budget
      from page s join sized z on z.id = s.id
     order by s.created_at desc, s.id desc`
}

export interface SessionFilter {
  userId?: string
  policy?: string
  state?: SessionState
  idleFor?: number
  createdBefore?: Date
  // A CIDR block (parseIpFilter): sessions whose ip lies inside it.
  ipBlock?: string
}

function matches(db: Db, filter: SessionFilter) {
  return db`
    ${filter.userId === undefined ? db`` : db`and s.user_id = ${filter.userId}`}
    ${filter.policy === undefined ? db`` : db`and s.policy = ${filter.policy}`}
    ${filter.idleFor === undefined ? db`` : db`and s.last_seen_at <= now() - make_interval(secs => ${filter.idleFor})`}
    ${filter.createdBefore === undefined ? db`` : db`and s.created_at < ${filter.createdBefore}`}
    ${filter.ipBlock === undefined ? db`` : db`and inet_or_null(s.ip) <<= ${filter.ipBlock}::inet`}
    ${filter.state === undefined ? db`` : stateIs(db, filter.state)}`
}

function stateIs(db: Db, state: SessionState) {
  switch (state) {
    // An active session's end is never recorded: saying so lets the walk use sessions_live_idx.
    case 'active': return db`and ${isActive(db)} and not s.end_recorded`
    case 'revoked': return db`and s.revoked_at is not null`
    case 'expired': return db`and s.revoked_at is null and now() >= s.expires_at`
    case 'idle_timeout': return db`and s.revoked_at is null and now() < s.expires_at and now() >= s.idle_expires_at`
  }
}

// How many sessions one listing page may examine: a rare filter answers a short (even empty) page with a cursor where the
// walk stopped, instead of reading the whole table for one page.
export const LISTING_SCAN_BUDGET = 5000

export interface ListedRow extends JudgedRow {
  // Whether the row matches the filter; a row that does not is only the marker of where the walk stopped.
  hit: boolean
  // The row's place in the walk; LISTING_SCAN_BUDGET marks the end of the budget.
  n: number
}

// Keyset pagination by id, newest first: ids are ULIDs, so the order follows creation and never shifts under inserts. The
// walk goes down an index by id (of the user, the policy, the revoked or the not-ended sessions) and tests the rest of
// the filter on each row; no index names last_seen_at or idle_expires_at, so that a touch stays a HOT update.
export async function listSessions(db: Db, filter: SessionFilter, beforeId: string | undefined, limit: number): Promise<ListedRow[]> {
  const walk = db`
    ${filter.userId === undefined ? db`` : db`and s.user_id = ${filter.userId}`}
    ${filter.policy === undefined ? db`` : db`and s.policy = ${filter.policy}`}
    ${filter.state === 'revoked' ? db`and s.revoked_at is not null` : filter.state === 'active' ? db`and s.revoked_at is null and not s.end_recorded` : db``}
    ${beforeId === undefined ? db`` : db`and s.id < ${beforeId}`}`
  return db<ListedRow[]>`
    select * from (
      select s.*, ${judge(db)}, (true ${matches(db, filter)}) as hit, row_number() over (order by s.id desc)::int as n
        from sessions s
       where true ${walk}
       order by s.id desc
       limit ${LISTING_SCAN_BUDGET}) w
     where w.hit or w.n = ${LISTING_SCAN_BUDGET}
     order by w.id desc
     limit ${limit}`
}

export interface RevokedBatch {
  // Active matching sessions this batch took up, and the last of them in id order: where the next batch starts.
  picked: number
  lastId: string | null
  // Those this batch revoked (fewer than picked only when another change ended one first).
  revokedIds: string[]
}

// One batch of a bulk revocation: the next `batchSize` active sessions matching the filter after `afterId` in id order,
// revoked with their audit events in one statement, the sessions_changed trigger notifying (atomic on its own, as mass revocation runs
// it outside a transaction on the connection that holds its lock). A keyset walk: each batch starts where the last one stopped, on an index
// ending in id (the primary key, (user_id, id) or (policy, id)), so a batch reads about its own rows at any table size, and
// the statement's parameters are a fixed handful at any batch size.
export async function revokeBatch(db: Db, filter: SessionFilter & { exceptId?: string }, afterId: string | undefined, batchSize: number, reason: string, actor: string): Promise<RevokedBatch> {
  const [batch] = await db<RevokedBatch[]>`
    with picked as (
      select s.id from sessions s
       where ${isActive(db)} ${matches(db, filter)}
         ${filter.exceptId === undefined ? db`` : db`and s.id <> ${filter.exceptId}`}
         ${afterId === undefined ? db`` : db`and s.id > ${afterId}`}
       order by s.id
       limit ${batchSize}
    ), revoked as (
      -- by primary key, id by id: a join with the CTE could be planned as a hash join over the whole table
      update sessions s set revoked_at = now(), revoke_reason = ${reason}
       where s.id = any(array(select p.id from picked p)) and ${isActive(db)}
      returning s.id, s.user_id, s.ip, s.user_agent
    ), revoked_event as (
      insert into audit_events (type, session_id, user_id, actor, reason, ip, user_agent)
      select 'revoked', r.id, r.user_id, ${actor}, ${reason}, r.ip, r.user_agent from revoked r
    )
    select (select count(*) from picked)::int as picked,
           (select max(p.id) from picked p) as "lastId",
           coalesce((select array_agg(r.id) from revoked r), '{}') as "revokedIds"`
  return batch
}

// Writes the expired / idle_timeout event of sessions that ended by time, dated when they ended, once each.
export async function recordTimeEnded(db: Db, batchSize: number): Promise<number> {
  const rows = await db`
    with ended as (
      update sessions set end_recorded = true
       where id in (
         select s.id from sessions s
          where s.revoked_at is null and not s.end_recorded and least(s.expires_at, s.idle_expires_at) <= now()
          order by least(s.expires_at, s.idle_expires_at)
          limit ${batchSize}
          for update skip locked)
      returning *)
    insert into audit_events (at, type, session_id, user_id, actor, reason, ip, user_agent)
    select least(expires_at, idle_expires_at),
           case when expires_at <= idle_expires_at then 'expired' else 'idle_timeout' end,
           id, user_id, 'system', null, ip, user_agent
      from ended
    returning id`
  return rows.length
}

// Ended sessions (revoked, or past a deadline) whose end lies more than `retention` seconds back; never an active one.
export async function deleteEndedBefore(db: Db, retention: number, batchSize: number): Promise<number> {
  const rows = await db`
    delete from sessions where id in (
      select s.id from sessions s
       where s.ended_at < now() - make_interval(secs => ${retention})
       limit ${batchSize}
       for update skip locked)
    returning id`
  return rows.length
}
