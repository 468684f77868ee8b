-- The revocation feed serves events in the order no open transaction can still precede. Identity ids are taken at insert,
-- not at commit, so a feed by id could pass an event that commits later below it; the transaction id of each event, with
-- the oldest transaction still open, tells what is settled. Rows already here get this migration's transaction id.
alter table audit_events add column xid xid8 not null default pg_current_xact_id();
create index audit_events_feed_idx on audit_events (xid, id) where type in ('revoked', 'rotated', 'limit_evicted');

-- The highest transaction id among pruned revocation events: a feed cursor at or below it may have missed one (410).
create table audit_feed_pruned (
  singleton boolean primary key default true check (singleton),
  xid       xid8 not null
);
insert into audit_feed_pruned (xid) values ('0'::xid8);

create function audit_feed_note_pruned() returns trigger language plpgsql as $$
begin
  update audit_feed_pruned p set xid = greatest(p.xid, d.xid)
    from (select max(o.xid) as xid from pruned o where o.type in ('revoked', 'rotated', 'limit_evicted')) d
   where d.xid is not null;
  return null;
end $$;

create trigger audit_events_feed_pruned after delete on audit_events
  referencing old table as pruned for each statement execute function audit_feed_note_pruned();
