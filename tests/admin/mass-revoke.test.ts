// Mass revocation and prune at scale: a keyset walk whose batches cost the same at any table size, answers within a budget
// the gate respects (never 503 while the work goes on), and one sweep at a time (a retry is refused, not run beside it).
import postgres from 'postgres'
import pino from 'pino'
import t from 'tap'
import { createClient } from '../../packages/client/src/index.js'
import { loadConfig } from '../../src/config.js'
import { MASS_REVOKE_LOCK_ID } from '../../src/admin/service.js'
import { buildServer } from '../../src/server.js'
import { ADMIN_KEY, BASE_ENV, call, setup } from '../helpers/app.js'
import { insertLongEndedSessions } from '../helpers/db.js'
import { listeningService, waitFor } from '../client/_support.js'

const admin = (url: string, method: 'DELETE' | 'POST' = 'DELETE') => ({ method, url, key: ADMIN_KEY })

// `count` active sessions, ids s_<prefix><hex of g>; every 1000th of policy finance, users u0…u4999.
async function fill(sql: postgres.Sql, prefix: string, count: number): Promise<void> {
  await sql`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, idle_expires_at, expires_at)
    select 's_' || ${prefix} || lpad(upper(to_hex(g)), ${26 - prefix.length}, '0'), sha256((${prefix} || g)::bytea), 'u' || (g % 5000),
           case when g % 1000 = 0 then 'finance' else 'default' end, 3600, now() + interval '1 hour', now() + interval '1 day'
      from generate_series(1, ${count}::int) g`
}

const countWhere = async (sql: postgres.Sql, what: 'active' | 'revoked_events') => (await (what === 'active'
  ? sql<{ n: number }[]>`select count(*)::int as n from sessions where revoked_at is null`
  : sql<{ n: number }[]>`select count(*)::int as n from audit_events where type = 'revoked'`))[0].n

interface PlanNode { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; Plans?: PlanNode[] }
const nodesOf = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodesOf)]

t.test('mass revocation walks the matches by id: each real batch statement reads an index, with no sort and no table scan', async (t) => {
  const { url, sql } = await setup(t)
  await fill(sql, 'P', 30_000)
  await sql`analyze sessions`
  // The service on a pool that records every statement it sends, with its parameters.
  const sent: Array<{ query: string; params: unknown[] }> = []
  const pool = postgres(url, { max: 4, onnotice: () => {}, debug: (_c: number, query: string, params: unknown[]) => { sent.push({ query, params }) } })
  const config = loadConfig({ ...BASE_ENV, DATABASE_URL: url })
  const app = await buildServer({ config, sql: pool, cron: false, loggerInstance: pino({ level: 'silent' }) })
  t.teardown(() => app.close())

  for (const [label, query] of [['policy (rare)', 'policy=finance'], ['user', 'userId=u42'], ['createdBefore', `createdBefore=${new Date(Date.now() + 3_600_000).toISOString()}`], ['all', 'all=true']]) {
    sent.length = 0
    for (let cursor = ''; ;) {
      const res = await call(app, admin(`/v1/admin/sessions?${query}${cursor}`))
      t.equal(res.statusCode, 200, `${label}: ${res.body}`)
      if (res.statusCode !== 200 || res.json().done !== false) break
      cursor = `&cursor=${res.json().nextCursor}`
    }
    const batches = sent.filter((s) => /update sessions/.test(s.query) && /revoked_at = now\(\)/.test(s.query))
    t.ok(batches.length >= 1, `${label}: ${batches.length} batch statements`)
    // The first and the last batch: the last starts deep into the walk, where a sort of all matches would cost the most.
    for (const batch of new Set([batches[0], batches[batches.length - 1]])) {
      const [{ 'QUERY PLAN': [plan] }] = await sql.unsafe(`explain (format json) ${batch.query}`, batch.params as never[]) as unknown as [{ 'QUERY PLAN': [{ Plan: PlanNode }] }]
      const nodes = nodesOf(plan.Plan)
      const types = nodes.map((node) => node['Node Type'])
      t.notOk(nodes.some((node) => node['Node Type'] === 'Seq Scan' && node['Relation Name'] === 'sessions'), `${label}: no scan of the table`)
      if (label === 'user') {
        // A user's few sessions may be fetched through an index on user_id and sorted: the sort holds that user's rows only.
        t.ok(nodes.some((node) => /^sessions_user_/.test(node['Index Name'] ?? '')), `${label}: read through an index on user_id (${types.join(', ')})`)
        continue
      }
      t.notOk(types.includes('Sort'), `${label}: no sort (${types.join(', ')})`)
      t.ok(nodes.some((node) => /Index (Only )?Scan/.test(node['Node Type']) && node['Relation Name'] === 'sessions'), `${label}: an index scan`)
    }
  }
  t.equal(await countWhere(sql, 'active'), 0)
  t.equal(await countWhere(sql, 'revoked_events'), 30_000, 'one event per session')
})

t.test('a long sweep answers 200 within its budget, never 503, and goes on from its cursor until done', async (t) => {
  // statement_timeout 2.5 s: before, the gate answered 503 after 5 s while the sweep went on.
  const { app, sql } = await setup(t, { DATABASE_STATEMENT_TIMEOUT_MS: '2500' })
  await fill(sql, 'L', 40_000)
  let revoked = 0
  let calls = 0
  let cursor: string | undefined
  for (;;) {
    const res = await call(app, admin(`/v1/admin/sessions?all=true&reason=incident${cursor === undefined ? '' : `&cursor=${cursor}`}`))
    calls++
    t.equal(res.statusCode, 200, res.body)
    if (res.statusCode !== 200) break
    const step = res.json() as { revoked: number; done: boolean; nextCursor: string | null }
    revoked += step.revoked
    if (step.done !== false) break
    t.type(step.nextCursor, 'string')
    cursor = step.nextCursor!
  }
  t.equal(revoked, 40_000, `revoked in ${calls} calls`)
  t.equal(await countWhere(sql, 'active'), 0)
  t.equal(await countWhere(sql, 'revoked_events'), 40_000, 'one event per session')

  const other = await call(app, admin(`/v1/admin/sessions?policy=finance${cursor === undefined ? '' : `&cursor=${cursor}`}`))
  if (cursor !== undefined) t.equal(other.statusCode, 400, 'a cursor continues only the sweep that issued it')

  await insertLongEndedSessions(sql, 1, 60_000)
  let deleted = 0
  for (;;) {
    const res = await call(app, admin('/v1/admin/prune', 'POST'))
    t.equal(res.statusCode, 200, res.body)
    if (res.statusCode !== 200) break
    deleted += res.json().deleted
    if (res.json().done !== false) break
  }
  t.equal(deleted, 60_000, 'prune went on to the end too')
})

t.test('one sweep at a time: a retry meets the running sweep with 409 and does nothing; the client waits for it and goes on', async (t) => {
  const { app, sql, base } = await listeningService(t, { DATABASE_STATEMENT_TIMEOUT_MS: '2500' })
  await fill(sql, 'R', 30_000)
  const first = call(app, admin('/v1/admin/sessions?all=true'))
  t.ok(await waitFor(async () => (await countWhere(sql, 'revoked_events')) > 0, 30_000), 'the first sweep is under way')
  const retry = await call(app, admin('/v1/admin/sessions?all=true'))
  t.equal(retry.statusCode, 409, retry.body)
  t.equal(retry.json().error.code, 'sweep_running')
  const firstStep = (await first).json() as { revoked: number }

  // The client meets a running sweep (its lock held here, as a sweep on another node would hold it), waits for it, and
  // then sweeps on to the end. The lock is released at the client's first wait, so the meeting does not depend on timing.
  const holder = await sql.reserve()
  await holder`select pg_advisory_lock(${MASS_REVOKE_LOCK_ID})`
  let releaseLock = () => {}
  const unlocked = new Promise<void>((resolve) => { releaseLock = resolve }).then(async () => {
    await holder`select pg_advisory_unlock(${MASS_REVOKE_LOCK_ID})`
    holder.release()
  })
  const waits: string[] = []
  const client = createClient({
    baseUrl: base, apiKey: ADMIN_KEY, retryBaseDelayMs: 20, retryMaxDelayMs: 200,
    onRetry: ({ error }) => { waits.push(error.code); releaseLock() },
  })
  let byClient: number
  try {
    byClient = await client.revokeMatching({ all: true })
  } finally {
    releaseLock()
    await unlocked
  }
  t.equal(firstStep.revoked + byClient, 30_000, 'every session revoked exactly once')
  t.equal(await countWhere(sql, 'active'), 0)
  t.equal(await countWhere(sql, 'revoked_events'), 30_000, 'no session revoked twice')
  t.ok(waits.includes('sweep_running'), `the client waited for the running sweep (${waits.join(', ')})`)
})
