-- Sessions: one row per login session. Only a SHA-256 hash of the token is stored.
create table sessions (
  id              text primary key check (id ~ '^s_[0-9A-Z]{26}$'),
  token_hash      bytea not null unique check (octet_length(token_hash) = 32),
  user_id         text not null check (char_length(user_id) between 1 and 256),
  policy          text not null,
  data            jsonb not null default '{}'::jsonb check (jsonb_typeof(data) = 'object'),
  version         integer not null default 1 check (version >= 1),
  idle_timeout    integer not null check (idle_timeout > 0),
  created_at      timestamptz not null default now(),
  last_seen_at    timestamptz not null default now(),
  idle_expires_at timestamptz not null,
  expires_at      timestamptz not null,
  ip              text,
  user_agent      text,
  revoked_at      timestamptz,
  revoke_reason   text,
  -- set once pruning has written the expired / idle_timeout audit event of a session that ended by time
  end_recorded    boolean not null default false,
  check ((revoked_at is null) = (revoke_reason is null))
);

-- A user's sessions of a policy, least recently seen first: the limit check and "my devices".
create index sessions_user_policy_idx on sessions (user_id, policy, last_seen_at) where revoked_at is null;
create index sessions_user_created_idx on sessions (user_id, created_at desc);
-- Sessions that ended by time and still need their audit event, soonest first.
create index sessions_unrecorded_end_idx on sessions (least(expires_at, idle_expires_at)) where revoked_at is null and not end_recorded;
-- Pruning: ended sessions by the time they ended.
create index sessions_ended_at_idx on sessions (coalesce(revoked_at, least(expires_at, idle_expires_at)));

-- Tokens replaced by a rotation, so the old token answers "revoked: rotated" instead of "not found".
create table rotated_tokens (
  token_hash bytea primary key check (octet_length(token_hash) = 32),
  session_id text not null references sessions (id) on delete cascade,
  rotated_at timestamptz not null default now()
);
create index rotated_tokens_session_idx on rotated_tokens (session_id);
