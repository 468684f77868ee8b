// Property: whatever the creation, revocation and expiry times (all on the database clock), a prune deletes exactly the
// sessions that ended more than SESSION_RETENTION ago and the events older than that; never an active session.
import fc from 'fast-check'
import t from 'tap'
import { connect } from '../../src/db.js'
import { prune } from '../../src/jobs/prune.js'
import { createMetrics } from '../../src/metrics.js'
import { freshDatabase, POOL } from '../helpers/db.js'

const MINUTE = 60
const DAY = 86400
const RUNS = Number(process.env.PRUNE_PROPERTY_RUNS ?? 40)

// Every instant is a whole number of minutes plus 30 s from now, and every retention a whole number of minutes: no end
// ever lies within 30 s of a retention boundary, so the few milliseconds between statements cannot decide an outcome.
const offset = (minDays: number, maxDays: number) => fc.integer({ min: (minDays * DAY) / MINUTE, max: (maxDays * DAY) / MINUTE }).map((m) => m * MINUTE + 30)

// Deadlines in the past (ended by time) or in the future (still running), about as often; half the sessions revoked.
const sessionSpec = fc.record({
  createdAgo: offset(0, 60),
  revokedAgo: fc.oneof(fc.constant(undefined), offset(0, 60)),
  idleEndsIn: fc.oneof(offset(-60, 0), offset(0, 1)),
  endsIn: fc.oneof(offset(-60, 0), offset(0, 30)),
})

const retention = fc.constantFrom(0, 60, 3600, DAY, 7 * DAY, 30 * DAY)

t.test(`prune property (${RUNS} runs): deletes exactly the sessions ended longer ago than the retention, never an active one`, async (t) => {
  const { url, sql } = await freshDatabase(t)
  t.teardown(() => sql.end({ timeout: 5 }))
  const pool = connect(url, POOL)
  t.teardown(() => pool.end({ timeout: 5 }))
  const metrics = createMetrics(POOL.databasePoolMax)
  let deletedSessions = 0
  let keptActive = 0

  await fc.assert(fc.asyncProperty(fc.array(sessionSpec, { minLength: 1, maxLength: 30 }), fc.array(offset(0, 60), { maxLength: 10 }), retention,
    async (specs, eventAges, retentionSeconds) => {
      await sql`truncate sessions, audit_events cascade`
      const rows = specs.map((spec, i) => ({
        id: `s_${String(i).padStart(26, '0')}`,
        created: -spec.createdAgo,
        // A revocation cannot come before the creation.
        revoked: spec.revokedAgo === undefined ? null : -Math.min(spec.revokedAgo, spec.createdAgo),
        idle: spec.idleEndsIn,
        ends: spec.endsIn,
      }))
      for (const row of rows) {
        await sql`
          insert into sessions (id, token_hash, user_id, policy, idle_timeout, created_at, last_seen_at, idle_expires_at, expires_at, revoked_at, revoke_reason)
          values (${row.id}, sha256(${row.id}::bytea), 'u', 'default', 60,
                  now() + make_interval(secs => ${row.created}), now() + make_interval(secs => ${row.created}),
                  now() + make_interval(secs => ${row.idle}), now() + make_interval(secs => ${row.ends}),
                  ${row.revoked === null ? null : sql`now() + make_interval(secs => ${row.revoked})`},
                  ${row.revoked === null ? null : 'logout'})`
      }
      const events = await sql<{ id: string; age: number }[]>`
        insert into audit_events (at, type, session_id, user_id, actor)
        select now() - make_interval(secs => age), 'created', 's_x', 'u', 'test' from unnest(${eventAges}::int[]) as age
        returning id, round(extract(epoch from now() - at))::int as age`

      // The verdict the database gives each row now, by the rule README states: ended when revoked or past a deadline.
      const judged = await sql<{ id: string; active: boolean; ended_ago: number | null }[]>`
        select id, revoked_at is null and now() < expires_at and now() < idle_expires_at as active,
               extract(epoch from now() - coalesce(revoked_at, least(expires_at, idle_expires_at)))::float8 as ended_ago
          from sessions`
      const result = await prune(pool, { retention: retentionSeconds }, metrics)
      if (!result.ran) throw new Error('prune did not get its lock')

      const left = new Set((await sql<{ id: string }[]>`select id from sessions`).map((row) => row.id))
      for (const row of judged) {
        const shouldGo = !row.active && row.ended_ago !== null && row.ended_ago > retentionSeconds
        if (row.active && !left.has(row.id)) throw new Error(`active session ${row.id} was deleted (retention ${retentionSeconds} s)`)
        if (shouldGo === left.has(row.id)) {
          throw new Error(`session ${row.id} ended ${row.ended_ago} s ago: ${shouldGo ? 'kept' : 'deleted'} with retention ${retentionSeconds} s`)
        }
        if (shouldGo) deletedSessions++
        if (row.active) keptActive++
      }
      const eventsLeft = new Set((await sql<{ id: string }[]>`select id::text as id from audit_events where session_id = 's_x'`).map((row) => row.id))
      for (const event of events) {
        if ((event.age > retentionSeconds) === eventsLeft.has(String(event.id))) {
          throw new Error(`an event ${event.age} s old was ${eventsLeft.has(String(event.id)) ? 'kept' : 'deleted'} with retention ${retentionSeconds} s`)
        }
      }
    }), { numRuns: RUNS, seed: process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED) })

  t.pass(`${RUNS} random tables: ${deletedSessions} ended sessions deleted, ${keptActive} active ones kept, none misjudged`)
  t.ok(deletedSessions > 0 && keptActive > 0, 'the runs covered both sides')
})
