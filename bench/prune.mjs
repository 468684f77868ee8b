// `npm run bench:prune -- [--dead N] [--live N] [--seconds S]`: prune throughput on a large table, and what validations
// did meanwhile (autocannon on 127.0.0.1 against an in-process server, random live tokens), compared with no pruning.
// Runs on its own database (bench_prune_<random>) on DATABASE_URL's server, dropped at the end.
import { createHash, randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import pino from 'pino'
import postgres from 'postgres'
import { loadConfig } from '../dist/config.js'
import { connect } from '../dist/db.js'
import { prune } from '../dist/jobs/prune.js'
import { createMetrics } from '../dist/metrics.js'
import { migrate } from '../dist/migrate.js'
import { buildServer } from '../dist/server.js'

const { values } = parseArgs({
  options: {
    dead: { type: 'string', default: '1000000' },
    live: { type: 'string', default: '100000' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '10' },
  },
})
const dead = Number(values.dead)
const live = Number(values.live)
const seconds = Number(values.seconds)
const serverUrl = process.env.DATABASE_URL
if (!serverUrl) {
  console.error('set DATABASE_URL to a server on which this may create and drop its own database')
  process.exit(2)
}

const KEY = 'bench-prune-key-0123456789'
const tokenOf = (i) => createHash('sha256').update(`prune-bench-${i}`).digest('base64url')
const name = `bench_prune_${randomBytes(4).toString('hex')}`
const admin = postgres(serverUrl, { max: 1, onnotice: () => {} })
await admin.unsafe(`create database ${name}`)
const url = Object.assign(new URL(serverUrl), { pathname: `/${name}` }).toString()
const config = loadConfig({ DATABASE_URL: url, API_KEYS: `bench:${KEY}`, LOG_LEVEL: 'silent', SESSION_RETENTION: '3600' })
const sql = connect(url, config)
// The fill is bench set-up, not service work: a connection without the service's statement timeout.
const fill = postgres(url, { max: 1, onnotice: () => {} })

try {
  await migrate(sql)
  let started = performance.now()
  // Dead: revoked two days ago (past the one-hour retention). Live: tokens the load validates.
  await fill`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, created_at, last_seen_at, idle_expires_at, expires_at, revoked_at, revoke_reason)
    select 's_D' || lpad(upper(to_hex(g)), 25, '0'), sha256(('dead' || g)::bytea), 'u' || (g % 10000), 'default', 7200,
           now() - interval '3 days', now() - interval '3 days', now() - interval '2 days', now() + interval '4 days',
           now() - interval '2 days', 'logout'
      from generate_series(1, ${dead}::int) g`
  await fill`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, idle_expires_at, expires_at)
    select 's_L' || lpad(upper(to_hex(g)), 25, '0'),
           -- the hash of tokenOf(g): base64url of sha256('prune-bench-' || g), hashed again as the service does
           sha256(convert_to(translate(rtrim(encode(sha256(convert_to('prune-bench-' || g, 'UTF8')), 'base64'), '='), '+/', '-_'), 'UTF8')),
           'u' || (g % 10000), 'default', 7200,
           now() + interval '2 hours', now() + interval '7 days'
      from generate_series(1, ${live}::int) g`
  await fill`vacuum analyze sessions`
  await fill.end()
  console.log(`filled ${dead} dead + ${live} live sessions in ${((performance.now() - started) / 1000).toFixed(1)} s`)

  const app = await buildServer({ config, sql: connect(url, config), databaseUrl: url, cron: false, loggerInstance: pino({ level: 'silent' }) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address()
  const load = (duration) => autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: Number(values.connections),
    duration,
    requests: [{
      method: 'POST',
      path: '/v1/sessions/validate',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      setupRequest: (req) => ({ ...req, body: JSON.stringify({ token: tokenOf(1 + Math.floor(Math.random() * live)), touch: false }) }),
    }],
  })

  const baseline = await load(seconds)
  // The same load for exactly as long as the prune runs (a bound of ten minutes), so every batch falls in the window.
  const during = load(600)
  started = performance.now()
  const result = await prune(sql, config, createMetrics(config.databasePoolMax))
  const pruneSeconds = (performance.now() - started) / 1000
  during.stop()
  const withPrune = await during
  await app.close()

  const row = (label, r) => `${label.padEnd(22)} ${String(Math.round(r.requests.average)).padStart(8)} req/s  p50 ${String(r.latency.p50).padStart(4)} ms  p99 ${String(r.latency.p99).padStart(4)} ms  non-2xx ${r.non2xx}  errors ${r.errors}`
  console.log(`pruned ${result.sessions} sessions in ${pruneSeconds.toFixed(1)} s (${Math.round(result.sessions / pruneSeconds)} rows/s, batches of 5,000)`)
  console.log(row('validate, no prune', baseline))
  console.log(row('validate, pruning', withPrune))
  console.log(`validate while pruning: ${(withPrune.requests.average / Math.max(1, baseline.requests.average)).toFixed(2)} × the throughput and ${(withPrune.latency.p99 / Math.max(1, baseline.latency.p99)).toFixed(2)} × the p99 of validate without (measured over the ${pruneSeconds.toFixed(1)} s the prune ran)`)
  const [{ left }] = await sql`select count(*)::int as left from sessions`
  console.log(`sessions left: ${left} (expected ${live})`)
} finally {
  await fill.end({ timeout: 5 })
  await sql.end({ timeout: 5 })
  await admin.unsafe(`drop database if exists ${name} with (force)`)
  await admin.end()
}
