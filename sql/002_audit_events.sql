-- The audit trail: one row per lifecycle transition, written in the transaction that made it.
create table audit_events (
  id         bigint generated always as identity primary key,
  at         timestamptz not null default now(),
  type       text not null check (type in ('created', 'rotated', 'revoked', 'expired', 'idle_timeout', 'limit_evicted', 'data_updated')),
  session_id text not null,
  user_id    text not null,
  actor      text not null,
  reason     text,
  ip         text,
  user_agent text
);

create index audit_events_session_idx on audit_events (session_id, id);
create index audit_events_user_idx on audit_events (user_id, id);
create index audit_events_at_idx on audit_events (at);
