-- Admin listings page by id (newest first) under a filter: these let a page be read from an index at any table size.
create index sessions_user_id_idx on sessions (user_id, id);
create index sessions_policy_id_idx on sessions (policy, id);
create index audit_events_type_idx on audit_events (type, id);
