// Validate is one indexed read; its write is coalesced to at most one per session per SESSION_TOUCH_INTERVAL.
import postgres from 'postgres'
import t from 'tap'
import { setup } from '../helpers/app.js'
import { createSession, validate } from '../helpers/sessions.js'
import type { Sql } from '../../src/db.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function tableUpdates(sql: Sql): Promise<number> {
  const [{ updates }] = await sql<{ updates: number }[]>`
    select coalesce(n_tup_upd, 0)::int as updates from pg_stat_user_tables where relname = 'sessions'`
  return updates
}

t.test('1,000 validates of 10 sessions within the touch interval write nothing; aged ones write once each', async (t) => {
  const { app, sql, url } = await setup(t, { SESSION_TOUCH_INTERVAL: '60' })
  // Every row update, counted the moment it happens (pg_stat_user_tables reports only after backends flush).
  await sql`create table test_session_updates (id text not null)`
  await sql`create function test_log_update() returns trigger language plpgsql as $$
    begin insert into test_session_updates values (new.id); return new; end $$`
  await sql`create trigger test_log_update after update on sessions for each row execute function test_log_update()`
  const updates = async () => (await sql<{ n: number }[]>`select count(*)::int as n from test_session_updates`)[0].n

  const sessions = await Promise.all(Array.from({ length: 10 }, (_, i) => createSession(app, { userId: `c${i}` })))
  for (let round = 0; round < 100; round++) {
    await Promise.all(sessions.map(async ({ token }) => t.equal((await validate(app, token)).statusCode, 200)))
  }
  t.equal(await updates(), 0, 'no row update for 1,000 validates of sessions seen less than 60 s ago')

  // Aged on a connection of its own and closed at once, so its statistics are reported and its updates not counted.
  const ager = postgres(url, { max: 1, onnotice: () => {} })
  await ager`alter table sessions disable trigger test_log_update`
  await ager`update sessions set last_seen_at = last_seen_at - interval '61 seconds'`
  await ager`alter table sessions enable trigger test_log_update`
  await ager.end()
  for (let round = 0; round < 100; round++) {
    await Promise.all(sessions.map(async ({ token }) => t.equal((await validate(app, token)).statusCode, 200)))
  }
  const perSession = await sql<{ id: string; n: number }[]>`select id, count(*)::int as n from test_session_updates group by id`
  t.equal(perSession.length, sessions.length, 'every aged session was written')
  t.ok(perSession.every((row) => row.n === 1), 'exactly one row update per session for 1,000 validates once the interval passed')

  const [{ lag }] = await sql<{ lag: number }[]>`select max(extract(epoch from now() - last_seen_at))::float8 as lag from sessions`
  t.ok(lag < 60, `recorded lastSeenAt lags true activity by less than the interval (${lag.toFixed(2)} s)`)

  // The same figure as Postgres's own table statistics: closing the app ends its backends, which report on exit.
  await app.close()
  let reported = -1
  for (let i = 0; i < 40 && reported !== sessions.length * 2; i++) {
    if (i > 0) await sleep(250)
    reported = await tableUpdates(sql)
  }
  t.equal(reported, sessions.length * 2, 'pg_stat_user_tables: n_tup_upd = 10 (the test\'s ageing) + 10 (validates)')
  t.comment(`pg_stat_user_tables n_tup_upd for sessions: ${reported} after 2,000 validates (10 of them the test's own ageing)`)
})

t.test('the validate lookup is an index scan on the token hash, at any table size', async (t) => {
  const { sql } = await setup(t)
  await sql`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, idle_expires_at, expires_at)
    select 's_' || lpad(upper(to_hex(g)), 26, '0'), sha256(('bulk' || g)::bytea), 'u' || (g % 1000), 'default', 3600,
           now() + interval '1 hour', now() + interval '1 day'
      from generate_series(1, 50000::int) g`
  await sql`analyze sessions`
  const plan = await sql<{ 'QUERY PLAN': string }[]>`
    explain select * from sessions s where s.token_hash = sha256('bulk7'::bytea)`
  const text = plan.map((row) => row['QUERY PLAN']).join('\n')
  t.match(text, /Index Scan using sessions_token_hash_key/, text)
  t.notMatch(text, /Seq Scan/)
})
