-- A user's sessions are found through sessions_user_id_idx (user_id, id), from 003, which ids in creation order make a
-- twin of (user_id, created_at): one index less to write on every create; a user's few rows are sorted by created_at.
drop index if exists sessions_user_created_idx;
