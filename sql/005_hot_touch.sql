-- migrate: no-transaction
-- A touch (last_seen_at, idle_expires_at) must be a HOT update: no index may name either column, or every touch writes
-- an entry into every index of the table. The indexes that did are replaced by ones on columns a touch never changes,
-- built concurrently (writes go on meanwhile); each statement may run again should the file fail half-way.

-- The end of a session that ended (revoked, or past a deadline and recorded by pruning), set once: pruning finds the
-- sessions ended long enough ago by it. A touch only changes active sessions, so it never changes this column.
alter table sessions add column if not exists ended_at timestamptz;

create or replace function sessions_set_ended_at() returns trigger language plpgsql as $$
begin
  new.ended_at := coalesce(new.revoked_at, least(new.expires_at, new.idle_expires_at));
  return new;
end $$;

-- Calls the function only for a session that has ended (revoked, or its end by time recorded), so never on a touch.
drop trigger if exists sessions_ended_at on sessions;
create trigger sessions_ended_at before insert or update of revoked_at, end_recorded, expires_at, idle_expires_at on sessions
  for each row when (new.revoked_at is not null or new.end_recorded) execute function sessions_set_ended_at();

update sessions set ended_at = coalesce(revoked_at, least(expires_at, idle_expires_at))
 where (revoked_at is not null or end_recorded) and ended_at is null;

-- Pruning: ended sessions by the time they ended.
drop index concurrently if exists sessions_ended_idx;
create index concurrently sessions_ended_idx on sessions (ended_at) where ended_at is not null;
drop index concurrently if exists sessions_ended_at_idx;

-- Sessions not revoked and whose end by time is not yet recorded, newest first: pruning's walk for ends to record, and
-- the admin listing of active sessions.
drop index concurrently if exists sessions_live_idx;
create index concurrently sessions_live_idx on sessions (id) where revoked_at is null and not end_recorded;
drop index concurrently if exists sessions_unrecorded_end_idx;

-- Revoked sessions newest first: the admin listing by state=revoked.
drop index concurrently if exists sessions_revoked_idx;
create index concurrently sessions_revoked_idx on sessions (id) where revoked_at is not null;

-- A user's sessions of a policy not revoked: the limit check and "my devices"; the few rows are sorted by last_seen_at.
drop index concurrently if exists sessions_user_policy_active_idx;
create index concurrently sessions_user_policy_active_idx on sessions (user_id, policy) where revoked_at is null;
drop index concurrently if exists sessions_user_policy_idx;

-- Room in each page for the new version of a touched row, which HOT needs (pages written from now on).
alter table sessions set (fillfactor = 80);
