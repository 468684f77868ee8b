// Two service instances on one database pruning at once: every row is deleted once and every end recorded once.
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { connect } from '../../src/db.js'
import { createMetrics } from '../../src/metrics.js'
import { prune, PRUNE_BATCH } from '../../src/jobs/prune.js'
import { freshDatabase, insertLiveSessions, insertLongEndedSessions, POOL } from '../helpers/db.js'
import { BASE_ENV } from '../helpers/app.js'

t.test('concurrent prunes from two nodes delete each row once and record each end once', async (t) => {
  const { sql, url } = await freshDatabase(t)
  t.teardown(() => sql.end({ timeout: 5 }))
  const ended = PRUNE_BATCH * 2 + 123
  const timedOut = 2_000
  const live = 500
  // Long-ended revoked sessions, sessions that ran out of time recently, and live ones.
  await insertLongEndedSessions(sql, 1, ended)
  await sql`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, created_at, last_seen_at, idle_expires_at, expires_at)
    select 's_' || lpad(upper(to_hex(g)), 26, '0'), sha256(('timed' || g)::bytea), 'u' || (g % 97), 'default', 60,
           now() - interval '2 hours', now() - interval '2 hours', now() - interval '1 hour', now() + interval '1 day'
      from generate_series(${ended + 1}::int, ${ended + timedOut}::int) g`
  await insertLiveSessions(sql, ended + timedOut + 1, ended + timedOut + live)

  const config = loadConfig({ ...BASE_ENV, DATABASE_URL: url })
  const nodes = [connect(url, POOL), connect(url, POOL)]
  t.teardown(() => Promise.all(nodes.map((node) => node.end({ timeout: 5 }))))
  const metrics = nodes.map(() => createMetrics(POOL.databasePoolMax))

  // Each node keeps pruning until a run finds nothing left to do, so both contend for the lock the whole time.
  const results = await Promise.all(nodes.map(async (node, i) => {
    const runs = []
    for (let round = 0; round < 20; round++) {
      const result = await prune(node, config, metrics[i])
      runs.push(result)
      if (result.ran && result.sessions === 0 && result.endedRecorded === 0 && round > 0) break
    }
    return runs
  }))
  const all = results.flat()
  const deleted = all.reduce((sum, run) => sum + run.sessions, 0)
  const recorded = all.reduce((sum, run) => sum + run.endedRecorded, 0)
  t.equal(deleted, ended, 'every long-ended session deleted exactly once across nodes')
  t.equal(recorded, timedOut, 'every time-ended session recorded exactly once across nodes')
  t.comment(`runs: ${all.length}, skipped because the other node held the lock: ${all.filter((run) => !run.ran).length}`)

  const [counts] = await sql<{ sessions: number; events: number; distinct_sessions: number }[]>`
    select (select count(*)::int from sessions) as sessions,
           (select count(*)::int from audit_events where type = 'idle_timeout') as events,
           (select count(distinct session_id)::int from audit_events where type = 'idle_timeout') as distinct_sessions`
  t.equal(counts.sessions, timedOut + live, 'the live and recently ended sessions remain')
  t.equal(counts.events, timedOut, 'one idle_timeout event per time-ended session')
  t.equal(counts.distinct_sessions, timedOut)
  const [{ active }] = await sql<{ active: number }[]>`
    select count(*)::int as active from sessions where revoked_at is null and now() < expires_at and now() < idle_expires_at`
  t.equal(active, live, 'no active session was touched')
})
