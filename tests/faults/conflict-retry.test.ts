// A transaction the database aborts as a deadlock victim (40P01) or for a serialization failure (40001) is run once more,
// whole, before anyone hears of it: the request succeeds instead of answering "the database cannot be reached".
import postgres from 'postgres'
import t from 'tap'
import { connect } from '../../src/db.js'
import { call, setup } from '../helpers/app.js'
import { createSession } from '../helpers/sessions.js'
import { freshDatabase, TEST_POOL } from '../helpers/db.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function deadlocks(sql: postgres.Sql): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`select deadlocks::int as n from pg_stat_database where datname = current_database()`
  return n
}

t.test('a create that is chosen as a deadlock victim is retried and succeeds', async (t) => {
  const { app, sql, url } = await setup(t, { SESSION_MAX_PER_USER: '1', SESSION_ON_LIMIT: 'evict_oldest' })
  const oldest = await createSession(app, { userId: 'u' })
  const before = await deadlocks(sql)
  const other = postgres(url, { max: 1, onnotice: () => {} })
  t.teardown(() => other.end({ timeout: 5 }))

  let created: Promise<Awaited<ReturnType<typeof call>>> | undefined
  await other.begin(async (tx) => {
    // This side never gives up first: the service's backend (deadlock_timeout 1 s) finds the cycle and is the victim.
    await tx`set local deadlock_timeout = '60s'`
    await tx`select id from sessions where id = ${oldest.session.id} for update`
    // The service takes the user's lock, then waits for the row this transaction holds (to evict it for the limit)...
    created = call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'u' } })
    for (let waited = 0; ; waited += 20) {
      const [{ waiting }] = await tx<{ waiting: number }[]>`
        select count(*)::int as waiting from pg_stat_activity
         where datname = current_database() and application_name = 'session-service' and wait_event_type = 'Lock'`
      if (waiting > 0) break
      if (waited > 10_000) throw new Error('the service never waited for the row lock')
      await sleep(20)
    }
    // ...and this one now waits for the user's lock: a cycle.
    await tx`select pg_advisory_xact_lock(1, hashtext(${'u'}))`
  })
  const res = await created!
  t.equal(await deadlocks(sql), before + 1, 'the database saw one deadlock')
  t.equal(res.statusCode, 201, `the create succeeded on its second attempt (got ${res.statusCode} ${res.body.slice(0, 160)})`)
  const [row] = await sql<{ revoke_reason: string | null }[]>`select revoke_reason from sessions where id = ${oldest.session.id}`
  t.equal(row.revoke_reason, 'session_limit', 'the oldest session was evicted, once')
  const [{ events }] = await sql<{ events: number }[]>`select count(*)::int as events from audit_events where session_id = ${oldest.session.id} and type = 'limit_evicted'`
  t.equal(events, 1)
})

t.test('a transaction that fails to serialize (40001) runs once more', async (t) => {
  const { sql: migrator, url } = await freshDatabase(t)
  await migrator`create table tally (owner text not null)`
  await migrator.end()
  const sql = connect(url, TEST_POOL)
  t.teardown(() => sql.end({ timeout: 5 }))
  let attempts = 0
  let bothRead!: () => void
  const barrier = new Promise<void>((resolve) => { bothRead = resolve })
  let reads = 0
  const settled: Record<string, Promise<unknown>> = {}
  // Write skew: each reads the count, then inserts; serializable isolation aborts one of the two. The second attempt
  // starts once the other transaction has settled, as a retry after a conflict usually does.
  const run = (owner: string, other: string) => sql.begin('isolation level serializable', async (tx) => {
    attempts += 1
    if (attempts > 2) await settled[other].catch(() => {})
    await tx`select count(*) from tally`
    reads += 1
    if (reads === 2) bothRead()
    await barrier
    await tx`insert into tally (owner) values (${owner})`
  })
  settled.a = run('a', 'b')
  settled.b = run('b', 'a')
  const results = await Promise.allSettled([settled.a, settled.b])
  t.same(results.map((r) => r.status), ['fulfilled', 'fulfilled'], `both committed (${results.map((r) => r.status === 'rejected' ? (r.reason as { code?: string }).code : 'ok').join(', ')})`)
  t.equal(attempts, 3, 'one of them ran twice')
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from tally`
  t.equal(n, 2)
})
