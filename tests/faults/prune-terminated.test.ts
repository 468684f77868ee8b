// The prune's own connection terminated mid-run (a database restart or failover during cleanup): the prune fails alone
// and promptly (its unlock on the dead connection must not wait for ever), the pool it borrowed the connection from keeps
// serving, and the next prune finishes the work. Found two postgres.js 3.4.9 faults (tests/db/driver-faults.test.ts; 4.1.0 has neither).
import postgres from 'postgres'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { connect } from '../../src/db.js'
import { createMetrics } from '../../src/metrics.js'
import { prune, PRUNE_BATCH, PRUNE_LOCK_ID } from '../../src/jobs/prune.js'
import { BASE_ENV } from '../helpers/app.js'
import { freshDatabase, insertLiveSessions, insertLongEndedSessions, POOL } from '../helpers/db.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// The promise's outcome, or 'hung' once ms pass first; the timer never outlives the race.
async function settled<T>(promise: Promise<T>, ms: number): Promise<{ value: T } | { error: unknown } | 'hung'> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<'hung'>((resolve) => { timer = setTimeout(() => resolve('hung'), ms) })
  try {
    return await Promise.race([promise.then((value) => ({ value }), (error: unknown) => ({ error })), bound])
  } finally {
    clearTimeout(timer)
  }
}

t.test('a prune whose backend is terminated mid-run fails alone; the pool keeps serving and the next prune finishes', async (t) => {
  const { url, sql } = await freshDatabase(t)
  t.teardown(() => sql.end({ timeout: 5 }))
  const ended = PRUNE_BATCH * 8
  const live = 100
  await insertLongEndedSessions(sql, 1, ended)
  await insertLiveSessions(sql, ended + 1, ended + live)

  const config = loadConfig({ ...BASE_ENV, DATABASE_URL: url })
  // Two connections: the prune reserves one, the other keeps serving meanwhile.
  const pool = connect(url, { ...POOL, databasePoolMax: 2 })
  t.teardown(() => pool.end({ timeout: 5 }))
  const metrics = createMetrics(2)
  const admin = postgres(url, { max: 1, onnotice: () => {} })
  t.teardown(() => admin.end({ timeout: 5 }))

  const first = prune(pool, config, metrics)
  let holder: number | undefined
  for (let i = 0; i < 200 && holder === undefined; i++) {
    const [row] = await admin<{ pid: number }[]>`
      select pid from pg_locks where locktype = 'advisory' and classid = 0 and objid = ${PRUNE_LOCK_ID} and granted`
    holder = row?.pid
    if (holder === undefined) await sleep(10)
  }
  t.ok(holder !== undefined, 'the prune took its lock')
  await admin`select pg_terminate_backend(${holder ?? 0})`
  const outcome = await settled(first, 10_000)
  t.ok(outcome !== 'hung' && 'error' in outcome, 'the interrupted prune fails (and does not hang)')

  const answers = await Promise.all(Array.from({ length: 20 }, () => settled(pool`select 1 as one`, 5_000)))
  t.same(answers.filter((answer) => answer === 'hung' || !('value' in answer)).length, 0, 'every one of 20 queries on the same pool answers within 5 s')

  const second = await settled(prune(pool, config, metrics), 60_000)
  t.ok(second !== 'hung' && 'value' in second && second.value.ran, 'the next prune takes the lock again (it went with the terminated backend) and runs')
  const [{ left }] = await sql<{ left: number }[]>`select count(*)::int as left from sessions`
  t.equal(left, live, 'every ended session is gone and every live one is kept')
  t.comment(`prune lock holder terminated: ${(second !== 'hung' && 'value' in second) ? second.value.sessions : '?'} sessions deleted by the next run`)
})
