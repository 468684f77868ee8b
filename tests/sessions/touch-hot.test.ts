// A touch changes only last_seen_at and idle_expires_at, which no index names: it is a HOT update (no index entry written).
// It runs on a private Postgres server: HOT needs old row versions pruned from the page, and a long transaction anywhere
// on a shared server (another database's bulk load) holds that back for every database.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import t from 'tap'
import { startEmbeddedDb } from '../../src/embedded-db.js'
import { migrate } from '../../src/migrate.js'
import { freePort } from '../support/process.js'
import { loadConfig } from '../../src/config.js'
import { connect } from '../../src/db.js'
import { createMetrics } from '../../src/metrics.js'
import { createSessionService } from '../../src/sessions/service.js'
import { TEST_POOL } from '../helpers/db.js'

const SESSIONS = 200
const TOUCHES_EACH = 10

t.test(`${SESSIONS * TOUCHES_EACH} touches of ${SESSIONS} sessions are HOT updates`, async (t) => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'touch-hot-'))
  await fs.chmod(dataDir, 0o755) // when root, the postgres OS user must reach it
  t.teardown(() => fs.rm(dataDir, { recursive: true, force: true }))
  const server = await startEmbeddedDb({ dataDir, port: await freePort(), log: () => {} })
  t.teardown(() => server.stop())
  const url = server.url
  const sql = connect(url, TEST_POOL)
  t.teardown(() => sql.end({ timeout: 5 }))
  await migrate(sql)
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent' })
  // One connection, so that its statistics can be flushed before they are read.
  const one = connect(url, { ...TEST_POOL, databasePoolMax: 1 })
  t.teardown(() => one.end({ timeout: 5 }))
  const sessions = createSessionService({ sql: one, config, metrics: createMetrics(1) })
  const tokens: string[] = []
  for (let i = 0; i < SESSIONS; i++) tokens.push((await sessions.create({ userId: `hot-${i % 20}`, data: { i } }, { name: 'test' })).token)
  const counts = async () => {
    await one`select pg_stat_force_next_flush()`
    await one`select 1`
    // A fresh connection reads the flushed counters (a connection caches what it read for its transaction).
    const reader = postgres(url, { max: 1, onnotice: () => {} })
    const [row] = await reader<{ upd: number; hot: number }[]>`
      select n_tup_upd::int as upd, n_tup_hot_upd::int as hot from pg_stat_user_tables where relname = 'sessions'`
    await reader.end()
    return row
  }
  const before = await counts()
  for (let round = 0; round < TOUCHES_EACH; round++) {
    for (const token of tokens) await sessions.touch(token)
  }
  const after = await counts()
  const updates = after.upd - before.upd
  const hot = after.hot - before.hot
  t.equal(updates, SESSIONS * TOUCHES_EACH, 'every touch updated its row')
  t.comment(`HOT updates: ${hot} of ${updates} touches (${((100 * hot) / updates).toFixed(1)} %)`)
  t.ok(hot >= updates * 0.95, `at least 95 % of touches are HOT (${hot} of ${updates})`)
})
