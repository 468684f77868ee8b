// The plans of the statements the service really sends for admin listings and a user's sessions, captured from the
// driver (postgres.js `debug`) and explained with their own parameters: each reads a page from an index, whatever the
// filter: no sequential scan of sessions, no sort of everything that matches.
import postgres from 'postgres'
import t from 'tap'
import { createAdminService } from '../../src/admin/service.js'
import { loadConfig } from '../../src/config.js'
import { createMetrics } from '../../src/metrics.js'
import { createSessionService } from '../../src/sessions/service.js'
import { LISTING_SCAN_BUDGET } from '../../src/sessions/store.js'
import { freshDatabase } from '../helpers/db.js'

const ROWS = 200_000

t.test('admin listings and a user\'s sessions: every statement the service sends reads one page from an index', async (t) => {
  const { url, sql } = await freshDatabase(t)
  t.teardown(() => sql.end({ timeout: 5 }))
  // Mostly active sessions of 5,000 users; one in a hundred of a rare policy; rare matches for the other filters (one in
  // a thousand revoked, one in five thousand expired, as many idle, those with their end recorded by pruning as they
  // would be; last seen up to two hours ago): a walk that reads until it fills a page would read the whole table.
  await sql`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, created_at, last_seen_at, idle_expires_at, expires_at, revoked_at, revoke_reason, end_recorded)
    select 's_' || lpad(upper(to_hex(g)), 26, '0'), sha256(('plan' || g)::bytea), 'u' || (g % 5000),
           case when g % 100 = 0 then 'finance' else 'default' end, 3600,
           now() - interval '2 days', now() - make_interval(secs => g % 7200),
           case when g % 5000 = 1 then now() - interval '1 hour' else now() + interval '1 hour' end,
           case when g % 5000 = 2 then now() - interval '1 hour' else now() + interval '1 day' end,
           case when g % 1000 = 3 then now() - interval '1 hour' end, case when g % 1000 = 3 then 'admin' end,
           g % 5000 in (1, 2)
      from generate_series(1, ${ROWS}::int) g`
  await sql`
    insert into audit_events (type, session_id, user_id, actor)
    select case when g % 1000 = 0 then 'revoked' else 'created' end, 's_x', 'u' || (g % 5000), 'bench' from generate_series(1, 100000::int) g`
  await sql`analyze sessions`
  await sql`analyze audit_events`

  const captured: Array<{ query: string; parameters: unknown[] }> = []
  const capturing = postgres(url, { max: 1, onnotice: () => {}, debug: (_connection, query, parameters) => { captured.push({ query, parameters: parameters as unknown[] }) } })
  t.teardown(() => capturing.end({ timeout: 5 }))
  await capturing`select 1` // the driver's own first queries (types) are not the service's
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent' })
  const admin = createAdminService({ sql: capturing, metrics: createMetrics(1), forgetLocally: () => {} })
  const sessions = createSessionService({ sql: capturing, config, metrics: createMetrics(1) })
  const cursorAt = Buffer.from('s:s_0000000000000000000000FFFF', 'utf8').toString('base64url')

  const listings: Array<[string, () => Promise<unknown>]> = [
    ['all sessions', () => admin.listSessions({}, undefined, 100)],
    ['all sessions, second page', () => admin.listSessions({}, cursorAt, 100)],
    ['by user', () => admin.listSessions({ userId: 'u42' }, undefined, 100)],
    ['by policy', () => admin.listSessions({ policy: 'finance' }, undefined, 100)],
    ['state=active', () => admin.listSessions({ state: 'active' }, undefined, 100)],
    ['state=revoked', () => admin.listSessions({ state: 'revoked' }, undefined, 100)],
    ['state=expired', () => admin.listSessions({ state: 'expired' }, undefined, 100)],
    ['state=idle_timeout', () => admin.listSessions({ state: 'idle_timeout' }, cursorAt, 100)],
    ['idleFor=7190 (rare)', () => admin.listSessions({ idleFor: 7190 }, undefined, 100)],
    ['idleFor and state=active', () => admin.listSessions({ idleFor: 3600, state: 'active' }, undefined, 100)],
    ['created before, by policy', () => admin.listSessions({ createdBefore: new Date(Date.now() - 86_400_000), policy: 'finance' }, undefined, 100)],
    ['a user\'s active sessions (GET /v1/users/:userId/sessions)', () => sessions.listForUser('u42', { limit: 100 })],
    ['events by type', () => admin.listEvents({ type: 'revoked' }, undefined, 100)],
    ['events by user', () => admin.listEvents({ userId: 'u42' }, undefined, 100)],
  ]
  for (const [label, list] of listings) {
    captured.length = 0
    await list()
    const statements = captured.filter((c) => /^\s*(select|with)\b/i.test(c.query))
    t.equal(statements.length, 1, `${label}: one statement`)
    const { query, parameters } = statements[0]
    const plan = (await sql.unsafe(`explain (analyze, costs off, timing off) ${query}`, parameters as never[]))
      .map((row) => row['QUERY PLAN'] as string).join('\n')
    t.match(plan, /Index (Only )?Scan/, `${label}: read from an index`)
    t.notMatch(plan, /Seq Scan on (sessions|audit_events)/, `${label}: no sequential scan`)
    // A selective filter (one user's rows) may have its few rows sorted; nothing sorts more than a walk's budget.
    const sorted = [...plan.matchAll(/Sort \(actual rows=(\d+)/g)].map((m) => Number(m[1]))
    t.ok(sorted.every((rows) => rows <= LISTING_SCAN_BUDGET), `${label}: sorts ${sorted.length === 0 ? 'nothing' : `${sorted.join('+')} rows`}`)
    // Rows the index scans produced, at most the walk's budget (plus a row for the marker).
    const read = [...plan.matchAll(/Index (?:Only )?Scan[^\n]*\(actual rows=(\d+)/g)].map((m) => Number(m[1]))
    t.ok(read.every((rows) => rows <= LISTING_SCAN_BUDGET + 1), `${label}: read ${read.join('+')} index rows`)
    t.comment(`${label}: ${plan.split('\n').filter((line) => /Scan|Sort|Limit|Window/.test(line)).map((line) => line.trim()).join(' | ')}`)
  }
})
