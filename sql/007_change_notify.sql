-- One mechanism for "a session changed": every change of what validate returns, whatever statement makes it, sends the
-- session id on the session_changes channel (delivered when, and only if, the transaction commits), so that every
-- node's cache and the revocation long-polls hear of it. A touch changes only last_seen_at and idle_expires_at, which
-- validate returns but which never make a cached copy wrong to serve, so it notifies nothing (it would flood).
create function sessions_notify_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('session_changes', new.id);
  return null;
end $$;

create trigger sessions_changed after update of revoked_at, expires_at, data, version, token_hash on sessions
  for each row
  when (old.revoked_at is distinct from new.revoked_at or old.expires_at is distinct from new.expires_at
        or old.data is distinct from new.data or old.version is distinct from new.version
        or old.token_hash is distinct from new.token_hash)
  execute function sessions_notify_changed();
