// The postgres.js faults that a database restart or pg_terminate_backend exposed in 3.4.9 (fixed there by a postinstall
// rewrite of the driver until the move to 4.1.0), each reproduced alone against the installed driver: a connection whose
// backend is terminated idle, mid-query or while reserved, and a connection whose start-up type query fails. On postgres
// 3.4.9 as published the last three fail (a stale 57P01 after the reset; a TypeError thrown from a timer and a query on
// the dead reserved connection that never settles; an unhandled rejection); the idle case passes there too.
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { serverUrl } from '../helpers/db.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// The promise's outcome, or 'hung' once ms pass first.
async function settled<T>(promise: Promise<T>, ms: number): Promise<{ value: T } | { error: Error } | 'hung'> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<'hung'>((resolve) => { timer = setTimeout(() => resolve('hung'), ms) })
  try {
    return await Promise.race([promise.then((value) => ({ value }), (error: Error) => ({ error })), bound])
  } finally {
    clearTimeout(timer)
  }
}
const describe = (outcome: Awaited<ReturnType<typeof settled>>) =>
  outcome === 'hung' ? 'hung' : 'error' in outcome ? `rejected: ${(outcome.error as { code?: string }).code ?? ''} ${outcome.error.message}` : 'resolved'

// An error thrown outside any query (a timer callback in the driver) or a rejection nobody handles would end the
// service: each test records them instead and requires none.
function watchProcess(t: Test): { uncaught: string[] } {
  const uncaught: string[] = []
  const onError = (err: unknown) => { uncaught.push(String((err as Error)?.stack ?? err)) }
  process.on('uncaughtException', onError)
  process.on('unhandledRejection', onError)
  t.teardown(() => {
    process.off('uncaughtException', onError)
    process.off('unhandledRejection', onError)
  })
  return { uncaught }
}

let n = 0
function pools(t: Test, max: number) {
  const name = `driver-fault-${process.pid}-${n++}`
  const sql = postgres(serverUrl(), { max, onnotice: () => {}, backoff: 0.05, connect_timeout: 5, connection: { application_name: name } })
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} })
  t.teardown(async () => {
    await sql.end({ timeout: 1 })
    await admin.end({ timeout: 1 })
  })
  // Terminates the pool's backends (waiting until it has `atLeast` of them, in the state given); returns how many.
  const terminate = async (atLeast = 1, state?: 'active' | 'idle'): Promise<number> => {
    for (let i = 0; i < 200; i++) {
      const rows = await admin<{ pid: number }[]>`
        select pid from pg_stat_activity where application_name = ${name} and (${state ?? ''} = '' or state = ${state ?? ''})`
      if (rows.length >= atLeast) {
        const done = await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${name}`
        return done.length
      }
      await sleep(10)
    }
    return 0
  }
  return { sql, terminate }
}

t.test('a pool connection terminated while idle: the next query succeeds, not with the old connection\'s error (3.4.9: #1223)', async (t) => {
  const { uncaught } = watchProcess(t)
  const { sql, terminate } = pools(t, 1)
  await sql`select 1`
  t.equal(await terminate(1, 'idle'), 1, 'the idle backend is terminated')
  await sleep(300)
  const outcomes = []
  for (let i = 0; i < 3; i++) outcomes.push(describe(await settled(sql`select 1 as one`, 5000)))
  t.same(outcomes, ['resolved', 'resolved', 'resolved'], 'each query after the reconnect succeeds')
  t.same(uncaught, [], 'nothing thrown outside a query')
})

t.test('a query in flight when its backend is terminated rejects, and the pool serves the next ones (3.4.9: #1097, #1130)', async (t) => {
  const { uncaught } = watchProcess(t)
  const { sql, terminate } = pools(t, 1)
  const slow = settled(sql`select pg_sleep(30)`, 5000)
  t.equal(await terminate(1, 'active'), 1, 'the busy backend is terminated')
  t.match(describe(await slow), /^rejected/, 'the query in flight rejects')
  const after = await Promise.all(Array.from({ length: 5 }, () => settled(sql`select 1 as one`, 5000)))
  t.same(after.map(describe), Array(5).fill('resolved'), 'five queries on the same pool then succeed')
  t.same(uncaught, [], 'nothing thrown outside a query')
})

t.test('a reserved connection whose backend is terminated: its queries reject, nothing crashes, and release() does not hand the dead connection to the pool (3.4.9: #1208, #1199)', async (t) => {
  const { uncaught } = watchProcess(t)
  const { sql, terminate } = pools(t, 1)
  const reserved = await sql.reserve()
  const slow = settled(reserved`select pg_sleep(30)`, 5000)
  // Sent while the first is in flight: it waits behind it on the reserved connection.
  const queued = settled(reserved`select 1 as one`, 5000)
  t.equal(await terminate(1, 'active'), 1, 'the reserved backend is terminated mid-query')
  t.match(describe(await slow), /^rejected/, 'the query in flight rejects')
  t.match(describe(await queued), /^rejected/, 'the query waiting behind it rejects (3.4.9: it waited for ever)')
  await sleep(100)
  // A small query on the dead reserved connection: 3.4.9 threw a TypeError from a timer (the process died).
  t.match(describe(await settled(reserved`select 1 as one`, 5000)), /^rejected/, 'a further query on the dead reserved connection rejects')
  reserved.release()
  const after = await Promise.all(Array.from({ length: 5 }, () => settled(sql`select 1 as one`, 5000)))
  t.same(after.map(describe), Array(5).fill('resolved'), 'after release, five queries on the pool (max 1) succeed')
  t.same(uncaught, [], 'nothing thrown outside a query')
})

t.test('the array-type query that starts each connection fails: the query settles, with no unhandled rejection (3.4.9: fetch_types, #1192, #1205, #1223)', async (t) => {
  const { uncaught } = watchProcess(t)
  // A 1 ms statement_timeout cancels the driver's own pg_type query (fetch_types, on by default) on every connection.
  const sql = postgres(serverUrl(), { max: 1, connect_timeout: 3, onnotice: () => {}, connection: { statement_timeout: 1 } })
  t.teardown(() => sql.end({ timeout: 1 }))
  t.not(describe(await settled(sql`select 1 as one`, 8000)), 'hung', 'the query settles')
  await sleep(200)
  t.same(uncaught, [], 'no unhandled rejection (3.4.9: 57014 canceling statement due to statement timeout)')
})
