// The benchmark (`npm run bench -- [options]`): one run, one database, every scenario measured with autocannon on
// 127.0.0.1 with random tokens from the whole filled set, then a table, the target ratios, and all figures as JSON.
// It runs against a database it creates (bench_<random>) on DATABASE_URL's server, or on a throwaway embedded Postgres
// under a temporary directory when DATABASE_URL is unset, and drops or removes it at the end. See README, "Performance".
import { fork } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import postgres from 'postgres'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const SERVERS = path.join(ROOT, 'bench', 'servers.mjs')
// The service runs with the node flags of `npm start` (and the image's CMD), as it does in production.
const SERVICE_NODE_FLAGS = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start.split(' ').filter((arg) => arg.startsWith('--'))
const require = createRequire(import.meta.url)

// ------------------------------------------------------------------------------------------------ options

const USAGE = `usage: npm run bench -- [options]

  --rows N          sessions in the table (and rows in every other table read), 10000 to 10000000 (default 100000)
  --connections N   autocannon connections (default 20)
  --duration S      measured seconds per scenario (default 10)
  --warmup S        unmeasured seconds of the same load before each measurement (default 2)
  --rounds N        run the whole list of scenarios N times, interleaved, and report each figure's median (default 1)
  --json FILE       where to write all figures (default bench-results.json)
  --only A,B        run only these scenarios (ratios needing a missing one are left out): ${'{names}'}
  --diagnostics     also run the diagnostic scenarios (diag-*), which split the gap between ceiling 2 and validate
  --cpu-prof        write a V8 CPU profile of every server process to bench-profiles/ and print its top frames
  --revocation-trials N
                    after the scenarios, revoke N sessions on one cache-on node and time until a second cache-on node
                    refuses each (default 1000; 0 skips)
  --max-minutes M   abort (and clean up) a run that takes longer than this (default: estimated from the options)
  -h, --help

DATABASE_URL: a server on which the bench may create and drop its own database bench_<random>; unset: an embedded
Postgres in a temporary directory, removed at the end.`

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: 'string', default: '100000' },
      connections: { type: 'string', default: '20' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      json: { type: 'string', default: 'bench-results.json' },
      rounds: { type: 'string', default: '1' },
      only: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      diagnostics: { type: 'boolean', default: false },
      'max-minutes': { type: 'string' },
      'revocation-trials': { type: 'string', default: '1000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  })
  if (values.help) {
    console.log(USAGE.replace('{names}', SCENARIOS.map((s) => s.name).join(', ')))
    process.exit(0)
  }
  const int = (name, min, max) => {
    const raw = values[name].replace(/_/g, '')
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min || n > max) usageError(`--${name} must be an integer from ${min} to ${max} (got ${values[name]})`)
    return n
  }
  const only = values.only === undefined ? undefined : values.only.split(',').map((s) => s.trim()).filter(Boolean)
  for (const name of only ?? []) {
    if (!SCENARIOS.some((s) => s.name === name)) usageError(`--only: unknown scenario ${name} (known: ${SCENARIOS.map((s) => s.name).join(', ')})`)
  }
  const options = {
    rows: int('rows', 10_000, 10_000_000),
    connections: int('connections', 1, 1000),
    duration: int('duration', 1, 600),
    warmup: int('warmup', 0, 60),
    rounds: int('rounds', 1, 20),
    json: path.resolve(values.json),
    only,
    cpuProf: values['cpu-prof'],
    diagnostics: values.diagnostics,
    revocationTrials: int('revocation-trials', 0, 100_000),
  }
  const scenarios = selectScenarios(options)
  // Fill, vacuum and index builds take about half a minute per million rows here; each scenario its time plus start-up and warm-ups.
  const estimate = 5 + (options.rows / 1e6) * 2 + options.rounds * scenarios.length * (options.duration + options.warmup + 40) / 60 + options.revocationTrials / 1000
  options.maxMinutes = values['max-minutes'] === undefined ? Math.ceil(estimate * 1.5) : int('max-minutes', 1, 600)
  return options
}

function selectScenarios(options) {
  return SCENARIOS.filter((s) => (options.only === undefined ? !s.diagnostic || options.diagnostics : options.only.includes(s.name)))
}

function usageError(message) {
  console.error(`${message}\n\n${USAGE.replace('{names}', SCENARIOS.map((s) => s.name).join(', '))}`)
  process.exit(2)
}

// ------------------------------------------------------------------------------------------------ tokens

// Token i of the filled set, in the service's format (32 bytes, unpadded base64url: 43 characters); the fill computes the same in SQL.
const tokenOf = (i) => createHash('sha256').update(`bench${i}`, 'utf8').digest('base64url')
const SQL_TOKEN = (i) => `translate(rtrim(encode(sha256(convert_to('bench' || ${i}, 'UTF8')), 'base64'), '='), '+/', '-_')`
// connect-pg-simple's session ids (express-session makes 32-character base64url ids).
const sidOf = (i) => createHash('sha256').update(`bench-cps${i}`, 'utf8').digest('base64url').slice(0, 32)
const SQL_SID = (i) => `left(translate(rtrim(encode(sha256(convert_to('bench-cps' || ${i}, 'UTF8')), 'base64'), '='), '+/', '-_'), 32)`
const SQL_SESSION_ID = (i) => `'s_' || lpad(${i}::text, 26, '0')`
const sessionIdOf = (i) => `s_${String(i).padStart(26, '0')}`

// ------------------------------------------------------------------------------------------------ scenarios

const json = { 'content-type': 'application/json' }

// A POST of { token } drawing a fresh token of the set with pick() for every request; with the API key unless told not to.
function postToken(ctx, path, pick, { apiKey = true } = {}) {
  return { method: 'POST', path, headers: apiKey ? { ...json, authorization: ctx.bearer } : json, setupRequest: (req) => ({ ...req, body: JSON.stringify({ token: tokenOf(pick()) }) }) }
}
// The service's default bound; the warm pass validates at most this many sessions, so that every measured draw can hit.
const CACHE_MAX_ENTRIES = 20_000

// Each scenario: the server process it runs in, the request autocannon sends (setupRequest gives every request a random
// session of the filled set), and the status a correct answer has.
const SCENARIOS = [
  {
    name: 'ceiling-constant',
    label: 'ceiling 1: bare Fastify, constant JSON',
    server: 'ceiling-constant',
    request: (ctx) => postToken(ctx, '/', ctx.random, { apiKey: false }),
    expect: 200,
  },
  {
    name: 'ceiling-one-read',
    label: 'ceiling 2: Fastify + postgres.js, one read by token hash',
    server: 'ceiling-one-read',
    request: (ctx) => postToken(ctx, '/', ctx.random, { apiKey: false }),
    expect: 200,
  },
  {
    name: 'validate-nocache',
    label: 'service: POST /v1/sessions/validate, no cache',
    server: 'service',
    // The filled sessions were seen at fill time: with this interval no lastSeenAt write falls due during the run, so this
    // measures the read path whatever --duration is (validate-touch-every measures the opposite bound).
    env: { SESSION_TOUCH_INTERVAL: '3600' },
    request: (ctx) => postToken(ctx, '/v1/sessions/validate', ctx.random),
    expect: 200,
  },
  {
    name: 'validate-cache',
    label: 'service: POST /v1/sessions/validate, SESSION_CACHE_TTL=30',
    server: 'service',
    env: { SESSION_TOUCH_INTERVAL: '3600', SESSION_CACHE_TTL: '30', SESSION_CACHE_MAX_ENTRIES: String(CACHE_MAX_ENTRIES) },
    cacheTtl: 30,
    // Random tokens from the sessions the warm pass validated: all of them when the pass fits in the TTL (see warmed in the JSON).
    request: (ctx) => postToken(ctx, '/v1/sessions/validate', ctx.randomWarmed),
    // Warms the cache with one pass over the first SESSION_CACHE_MAX_ENTRIES sessions of the set (never longer than the TTL allows).
    warm: (ctx) => {
      let next = 0
      return postToken(ctx, '/v1/sessions/validate', () => next++ % ctx.rows)
    },
    expect: 200,
  },
  {
    name: 'auth-cookie',
    label: 'service: GET /v1/auth with the cookie, no cache',
    server: 'service',
    env: { SESSION_TOUCH_INTERVAL: '3600' },
    request: (ctx) => ({ method: 'GET', path: '/v1/auth', headers: { authorization: ctx.bearer }, setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: `sid=${tokenOf(ctx.random())}` } }) }),
    expect: 200,
  },
  {
    name: 'express-session',
    label: 'alternative: express + express-session + connect-pg-simple',
    server: 'express-session',
    request: (ctx) => ({ method: 'GET', path: '/', headers: {}, setupRequest: (req) => ({ ...req, headers: { cookie: `connect.sid=${encodeURIComponent(`s:${ctx.sign(sidOf(ctx.random()), ctx.secret)}`)}` } }) }),
    expect: 200,
  },
  {
    name: 'validate-touch-every',
    label: 'service: validate, a lastSeenAt write on every request (SESSION_TOUCH_INTERVAL=0)',
    server: 'service',
    env: { SESSION_TOUCH_INTERVAL: '0' },
    request: (ctx) => postToken(ctx, '/v1/sessions/validate', ctx.random),
    expect: 200,
  },
  // Diagnostics, run only when named in --only or with --diagnostics: they split the gap between ceiling 2 and validate.
  {
    name: 'diag-service-query',
    label: 'diagnostic: ceiling 2 running the service\'s own validate query',
    diagnostic: true,
    server: 'service-query',
    request: (ctx) => postToken(ctx, '/', ctx.random, { apiKey: false }),
    expect: 200,
  },
  {
    name: 'diag-validate-logged',
    label: 'diagnostic: validate, no cache, LOG_LEVEL=debug (a request log line per validation)',
    diagnostic: true,
    server: 'service',
    env: { SESSION_TOUCH_INTERVAL: '3600', LOG_LEVEL: 'debug' },
    request: (ctx) => postToken(ctx, '/v1/sessions/validate', ctx.random),
    expect: 200,
  },
  {
    name: 'create',
    label: 'service: POST /v1/sessions (create, with its audit event)',
    server: 'service',
    request: (ctx) => ({ method: 'POST', path: '/v1/sessions', headers: { ...json, authorization: ctx.bearer }, setupRequest: (req) => ({ ...req, body: JSON.stringify({ userId: `bench-user-${ctx.random()}`, ip: '203.0.113.7', userAgent: 'autocannon' }) }) }),
    expect: 201,
  },
  {
    name: 'revoke',
    label: 'service: POST /v1/sessions/revoke (each token once)',
    server: 'service',
    // Walks a permutation of the set, so every request revokes a different active session until the set is used up;
    // past that, requests repeat revokes, which are no-op updates (counted as repeatedRevokes in the JSON). With --rounds,
    // the bench makes them active again (by SQL) before the next round.
    request: (ctx) => postToken(ctx, '/v1/sessions/revoke', ctx.nextToRevoke),
    expect: 204,
  },
]

const TARGETS = [
  { name: 'validate (no cache) / ceiling 2, req/s', of: ['validate-nocache', 'ceiling-one-read'], metric: 'reqPerSec', op: '>=', target: 0.85 },
  { name: 'validate (no cache) p99 / ceiling 2 p99', of: ['validate-nocache', 'ceiling-one-read'], metric: 'p99', op: '<=', target: 2 },
  { name: 'validate (no cache) / express-session + connect-pg-simple, req/s', of: ['validate-nocache', 'express-session'], metric: 'reqPerSec', op: '>=', target: 5 },
  { name: 'validate (cache on) / ceiling 1, req/s', of: ['validate-cache', 'ceiling-constant'], metric: 'reqPerSec', op: '>=', target: 0.6 },
  { name: 'create / ceiling 2, req/s', of: ['create', 'ceiling-one-read'], metric: 'reqPerSec', op: '>=', target: 0.5 },
]
const INFO_RATIOS = [
  { name: 'GET /v1/auth / ceiling 2, req/s', of: ['auth-cookie', 'ceiling-one-read'], metric: 'reqPerSec' },
  { name: 'validate (write every time) / ceiling 2, req/s', of: ['validate-touch-every', 'ceiling-one-read'], metric: 'reqPerSec' },
  { name: 'revoke / ceiling 2, req/s', of: ['revoke', 'ceiling-one-read'], metric: 'reqPerSec' },
  { name: 'ceiling 2 / ceiling 1, req/s', of: ['ceiling-one-read', 'ceiling-constant'], metric: 'reqPerSec' },
]

// ------------------------------------------------------------------------------------------------ cleanup and limits

const cleanups = []
let cleaning
function cleanUp() {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const step = cleanups.pop()
      try {
        await step()
      } catch (err) {
        console.error(`cleanup: ${err.message}`)
      }
    }
  })()
  return cleaning
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping and cleaning up`)
    void cleanUp().finally(() => process.exit(130))
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const log = (line) => process.stdout.write(`${line}\n`)

// ------------------------------------------------------------------------------------------------ database

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

// The server to create the bench database on: DATABASE_URL, or a fresh embedded Postgres in a temporary directory.
async function openServer() {
  if (process.env.DATABASE_URL) return { adminUrl: process.env.DATABASE_URL, embedded: false, postmasterPid: undefined }
  const { startEmbeddedDb } = await import('../dist/embedded-db.js')
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'session-bench-'))
  // Run as root, the embedded server runs as the OS user postgres, which must be able to reach its data directory.
  fs.chmodSync(tmp, 0o755)
  cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }))
  const dataDir = path.join(tmp, 'db')
  const logFile = fs.createWriteStream(path.join(tmp, 'postgres.log'))
  const started = Date.now()
  const db = await startEmbeddedDb({ dataDir, port: await freePort(), log: (line) => logFile.write(`${line}\n`) })
  cleanups.push(async () => {
    await db.stop()
    await new Promise((resolve) => logFile.end(resolve))
  })
  log(`embedded Postgres started in ${Date.now() - started} ms under ${tmp} (removed at the end)`)
  const postmasterPid = Number(fs.readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0])
  return { adminUrl: db.url, embedded: true, postmasterPid }
}

function withDatabase(url, name) {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

// Drops the secondary indexes and constraints of a table, runs fill, and recreates them exactly as they were (bulk builds
// are far faster than row-by-row index inserts at millions of rows). Only ever used on the bench's own database.
async function withoutIndexes(sql, table, keepPrimary, fill) {
  const indexes = await sql`
    select quote_ident(ic.relname) as index_name, pg_get_indexdef(i.indexrelid) as index_def,
           quote_ident(c.conname) as constraint_name, pg_get_constraintdef(c.oid) as constraint_def
      from pg_index i
      join pg_class ic on ic.oid = i.indexrelid
      left join pg_constraint c on c.conindid = i.indexrelid and c.conrelid = i.indrelid
     where i.indrelid = ${table}::regclass and (not ${keepPrimary} or not i.indisprimary)`
  for (const ix of indexes) {
    if (ix.constraint_name !== null) await sql.unsafe(`alter table ${table} drop constraint ${ix.constraint_name}`)
    else await sql.unsafe(`drop index ${ix.index_name}`)
  }
  await fill()
  for (const ix of indexes) {
    if (ix.constraint_name !== null) await sql.unsafe(`alter table ${table} add constraint ${ix.constraint_name} ${ix.constraint_def}`)
    else await sql.unsafe(ix.index_def)
  }
}

// The audit events and connect-pg-simple's table are filled only when a selected scenario writes or reads them.
async function fillTables(sql, rows, { auditEvents, expressSessions }) {
  const started = Date.now()
  await sql`set maintenance_work_mem = '512MB'`
  await sql`set synchronous_commit = off`
  const last = rows - 1
  // The service's sessions: all active, seen now, default policy timeouts (2 h idle, 7 days absolute), one user each.
  await withoutIndexes(sql, 'sessions', true, () => sql.unsafe(`
    insert into sessions (id, token_hash, user_id, policy, data, idle_timeout, created_at, last_seen_at, idle_expires_at, expires_at, ip, user_agent)
    select ${SQL_SESSION_ID('i')}, sha256(convert_to(${SQL_TOKEN('i')}, 'UTF8')), 'bench-user-' || i, 'default',
           '{"lang":"en_US","tz":"Europe/Paris"}'::jsonb, 7200, now(), now(), now() + interval '7200 seconds', now() + interval '7 days',
           '203.0.113.7', 'Mozilla/5.0 (bench)'
      from generate_series(0, ${last}) as i`))
  // Their "created" audit events, so that create and revoke insert into an audit table (and indexes) of the same size.
  if (auditEvents) await withoutIndexes(sql, 'audit_events', true, () => sql.unsafe(`
    insert into audit_events (at, type, session_id, user_id, actor, ip, user_agent)
    select now(), 'created', ${SQL_SESSION_ID('i')}, 'bench-user-' || i, 'bench', '203.0.113.7', 'Mozilla/5.0 (bench)'
      from generate_series(0, ${last}) as i`))
  // connect-pg-simple's own table (its table.sql), with the same number of sessions as express-session stores them.
  await sql.unsafe(fs.readFileSync(path.join(path.dirname(require.resolve('connect-pg-simple')), 'table.sql'), 'utf8'))
  if (expressSessions) await withoutIndexes(sql, '"session"', false, () => sql.unsafe(`
    insert into "session" (sid, sess, expire)
    select ${SQL_SID('i')},
           json_build_object('cookie', json_build_object('originalMaxAge', null, 'expires', null, 'httpOnly', true, 'path', '/'), 'userId', 'bench-user-' || i),
           now() + interval '1 day'
      from generate_series(0, ${last}) as i`))
  const filledMs = Date.now() - started
  // Set hint bits and the visibility map now, so the first scenario does not pay for them; then a checkpoint, so none falls in a measurement.
  await sql.unsafe('vacuum (analyze) sessions, audit_events, "session"')
  await sql.unsafe('checkpoint').catch((err) => log(`(no checkpoint: ${err.message})`))
  // The SQL and the bench must agree on tokens: check the first and the last.
  for (const i of [0, last]) {
    const [row] = await sql`select token_hash from sessions where id = ${sessionIdOf(i)}`
    const expected = createHash('sha256').update(tokenOf(i), 'utf8').digest()
    if (row === undefined || !Buffer.from(row.token_hash).equals(expected)) throw new Error(`token ${i}: the fill and the bench disagree on its hash`)
  }
  const [sizes] = await sql`
    select pg_total_relation_size('sessions') as sessions, pg_total_relation_size('audit_events') as audit_events,
           pg_total_relation_size('"session"') as express_sessions`
  return { fillSeconds: filledMs / 1000, vacuumSeconds: (Date.now() - started - filledMs) / 1000, bytes: Object.fromEntries(Object.entries(sizes).map(([k, v]) => [k, Number(v)])) }
}

async function restoreRevoked(ctx, from) {
  const indexes = []
  for (let k = from; k < ctx.revoked && k - from < ctx.rows; k++) indexes.push(((k % ctx.rows) * ctx.stride) % ctx.rows)
  // On a connection of its own, closed at once, so that its statistics are flushed before the next scenario counts.
  const sql = postgres(ctx.url, { max: 1, onnotice: () => {} })
  try {
    for (let i = 0; i < indexes.length; i += 10_000) {
      const ids = indexes.slice(i, i + 10_000).map(sessionIdOf)
      await sql`update sessions set revoked_at = null, revoke_reason = null where id = any(${ids}) and revoked_at is not null`
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
  await sleep(500)
}

async function tableStats(sql) {
  const rows = await sql`
    select relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, seq_scan, idx_scan
      from pg_stat_user_tables where relname in ('sessions', 'audit_events', 'rotated_tokens', 'session')`
  return Object.fromEntries(rows.map((r) => [r.relname, {
    inserted: Number(r.n_tup_ins), updated: Number(r.n_tup_upd), hotUpdated: Number(r.n_tup_hot_upd), deleted: Number(r.n_tup_del),
    seqScans: Number(r.seq_scan ?? 0), indexScans: Number(r.idx_scan ?? 0),
  }]))
}

function statsDelta(before, after) {
  const out = {}
  for (const [table, a] of Object.entries(after)) {
    const b = before[table] ?? {}
    out[table] = Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]))
  }
  return out
}

// ------------------------------------------------------------------------------------------------ CPU accounting (Linux /proc)

const CLK_TCK = 100
function procTimes(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // utime, stime, cutime, cstime are fields 14-17; f[0] is field 3.
    return { ppid: Number(f[1]), self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) }
  } catch {
    return undefined
  }
}

// All CPU Postgres spent: the postmaster, its live children, and the children it has reaped (cutime/cstime), in ms.
function postgresCpuMs(postmasterPid) {
  if (postmasterPid === undefined) return undefined
  const pm = procTimes(postmasterPid)
  if (pm === undefined) return undefined
  let ticks = pm.self + pm.children
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const t = procTimes(Number(name))
    if (t !== undefined && t.ppid === postmasterPid) ticks += t.self
  }
  return (ticks * 1000) / CLK_TCK
}

// The whole machine: busy and total CPU time, in ms, over all cores.
function machineCpuMs() {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
  const total = fields.reduce((a, b) => a + b, 0)
  const idle = fields[3] + fields[4]
  return { busy: ((total - idle) * 1000) / CLK_TCK, total: (total * 1000) / CLK_TCK }
}

// ------------------------------------------------------------------------------------------------ server processes

async function startServer(kind, settings, execArgv) {
  const child = fork(SERVERS, [kind], {
    env: { ...process.env, BENCH_SERVER: JSON.stringify(settings) },
    execArgv,
    // The service's request log (stdout) goes to /dev/null; errors still show.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  let exited = false
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => { exited = true; resolve(signal ?? code) }))
  const kill = async () => {
    if (exited) return
    child.kill('SIGKILL')
    await exit
  }
  cleanups.push(kill)
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start within 60 s`)), 60_000)
    child.once('message', (msg) => { clearTimeout(timer); resolve(msg.port) })
    void exit.then((how) => { clearTimeout(timer); reject(new Error(`${kind} server exited (${how}) before it listened`)) })
  })
  const ask = (what) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} server did not answer "${what}"`)), 15_000)
    child.once('message', (msg) => { clearTimeout(timer); resolve(msg) })
    child.send(what)
  })
  return {
    pid: child.pid,
    port,
    usage: () => ask('usage'),
    // Closes gracefully (so the pool ends and a CPU profile is written) and waits for the exit; the last usage is returned.
    async stop() {
      if (exited) return undefined
      const last = await ask('stop').catch(() => undefined)
      const how = await Promise.race([exit, sleep(15_000).then(() => 'timeout')])
      if (how === 'timeout') await kill()
      return last
    },
  }
}

// ------------------------------------------------------------------------------------------------ load

// Latencies of 2xx answers, kept whole (autocannon's own histogram has 1 ms resolution), in ms.
function percentile(sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}

async function load(url, request, { connections, duration, amount, stopAfterMs }) {
  const latencies = []
  const instance = autocannon({ url, connections, ...(amount === undefined ? { duration } : { amount }), pipelining: 1, timeout: 10, requests: [request] })
  instance.on('response', (_client, status, _bytes, ms) => { if (status >= 200 && status < 300) latencies.push(ms) })
  const timer = stopAfterMs === undefined ? undefined : setTimeout(() => instance.stop(), stopAfterMs)
  const r = await instance
  clearTimeout(timer)
  latencies.sort((a, b) => a - b)
  const round = (x) => (x === null ? null : Math.round(x * 100) / 100)
  return {
    requests: r.requests.total,
    // Sent includes the requests still in flight when the run stopped, which the server may well have processed.
    sent: r.requests.sent,
    seconds: r.duration,
    reqPerSec: Math.round(r.requests.total / r.duration),
    p50: round(percentile(latencies, 50)),
    p90: round(percentile(latencies, 90)),
    p99: round(percentile(latencies, 99)),
    maxMs: round(latencies.at(-1) ?? null),
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, { count }]) => [code, count])),
  }
}

async function probe(base, scenario, ctx) {
  const req = scenario.request(ctx)
  const built = req.setupRequest({ ...req, headers: { ...req.headers } })
  const res = await fetch(`${base}${built.path}`, { method: built.method, headers: built.headers, body: built.body })
  const text = await res.text()
  if (res.status !== scenario.expect) throw new Error(`${scenario.name}: the probe request answered ${res.status}, expected ${scenario.expect}: ${text.slice(0, 300)}`)
}

async function cacheCounts(base) {
  const text = await (await fetch(`${base}/metrics`)).text()
  const counts = { hits: 0, misses: 0 }
  for (const line of text.split('\n')) {
    if (!line.startsWith('session_validations_total{') || !line.includes('outcome="valid"')) continue
    const value = Number(line.slice(line.lastIndexOf(' ') + 1))
    if (line.includes('reason="cache"')) counts.hits += value
    else counts.misses += value
  }
  return counts
}

// ------------------------------------------------------------------------------------------------ CPU profiles

// Self time by area (package) and by function over the server's whole life, in % of its busy samples and µs per request sent.
// Sampling is by wall clock: on a saturated machine, time the process spent preempted lands on whatever frame was running.
function summariseProfile(file, requests, top = 12) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'))
  const selfUs = new Map()
  for (let i = 0; i < profile.samples.length; i++) selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0))
  const frames = new Map()
  const areas = new Map()
  let busy = 0
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0
    const { functionName, url, lineNumber } = node.callFrame
    if (us === 0 || functionName === '(idle)') continue
    busy += us
    const short = url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '')
    const key = `${functionName || '(anonymous)'}${short ? ` ${short}:${lineNumber + 1}` : ''}`
    frames.set(key, (frames.get(key) ?? 0) + us)
    const area = areaOf(short, functionName)
    areas.set(area, (areas.get(area) ?? 0) + us)
  }
  const pct = (us) => Math.round((us / busy) * 1000) / 10
  const perRequest = (us) => Math.round(us / Math.max(1, requests))
  return {
    file: path.relative(process.cwd(), file),
    busyMs: Math.round(busy / 1000),
    usPerRequest: perRequest(busy),
    areas: [...areas].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, pct: pct(us), usPerRequest: perRequest(us) })),
    frames: [...frames].sort((a, b) => b[1] - a[1]).slice(0, top).map(([frame, us]) => ({ frame, pct: pct(us), usPerRequest: perRequest(us) })),
  }
}

function areaOf(url, functionName) {
  if (functionName === '(garbage collector)') return 'V8: garbage collection'
  if (functionName === '(program)') return 'V8/native: (program)'
  if (url === '') return 'native (crypto, syscalls, builtins)'
  if (url.startsWith('node:')) return 'node core (http, net, streams)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]
  if (url.startsWith('dist/')) return 'this service (dist/)'
  if (url.startsWith('bench/')) return 'bench server'
  return url
}

// ------------------------------------------------------------------------------------------------ revocation across nodes

// Two service nodes with the cache on, one database. Each trial caches a fresh session on node B (two validates, the
// second a cache hit), revokes it through node A, and from A's answer on validates on B until B refuses it.
async function revocationTrials(ctx, trials) {
  const settings = { databaseUrl: ctx.url, secret: ctx.secret, env: { API_KEYS: ctx.apiKeys, SESSION_CACHE_TTL: '30', SESSION_TOUCH_INTERVAL: '3600' } }
  const nodeA = await startServer('service', settings, SERVICE_NODE_FLAGS)
  const nodeB = await startServer('service', settings, SERVICE_NODE_FLAGS)
  const baseA = `http://127.0.0.1:${nodeA.port}`
  const baseB = `http://127.0.0.1:${nodeB.port}`
  const call = async (base, verb, token) => {
    const res = await fetch(`${base}/v1/sessions/${verb}`, { method: 'POST', headers: { ...json, authorization: ctx.bearer }, body: JSON.stringify({ token }) })
    await res.arrayBuffer()
    return res.status
  }
  try {
    // The cache is used only once the node's change feed listens.
    for (const base of [baseA, baseB]) {
      const deadline = Date.now() + 15_000
      while (!(await (await fetch(`${base}/metrics`)).text()).includes('session_cache_trusted 1')) {
        if (Date.now() > deadline) throw new Error('revocation trials: a node\'s change feed did not start listening within 15 s')
        await sleep(50)
      }
    }
    const hitsBefore = (await cacheCounts(baseB)).hits
    const delays = []
    let staleAnswers = 0
    for (let trial = 0; trial < trials; trial++) {
      const token = tokenOf(ctx.nextToRevoke())
      for (let i = 0; i < 2; i++) {
        const status = await call(baseB, 'validate', token)
        if (status !== 200) throw new Error(`revocation trial ${trial}: validating a fresh session on node B answered ${status}`)
      }
      const revoked = await call(baseA, 'revoke', token)
      if (revoked !== 204) throw new Error(`revocation trial ${trial}: revoke on node A answered ${revoked}`)
      const answeredAt = performance.now()
      for (;;) {
        const status = await call(baseB, 'validate', token)
        if (status === 401) break
        if (status !== 200) throw new Error(`revocation trial ${trial}: validate on node B answered ${status}`)
        staleAnswers++
        if (performance.now() - answeredAt > 60_000) throw new Error(`revocation trial ${trial}: node B still accepted the token a minute after the revoke`)
      }
      delays.push(performance.now() - answeredAt)
    }
    const cacheHits = (await cacheCounts(baseB)).hits - hitsBefore
    delays.sort((a, b) => a - b)
    const round = (x) => Math.round(x * 100) / 100
    return {
      trials,
      // B's cache hits during the trials: at least one per trial (the second validate), so the cache really held the session.
      cacheHitsOnNodeB: cacheHits,
      staleAnswers,
      withinMs100: delays.filter((d) => d <= 100).length,
      p50Ms: round(percentile(delays, 50)),
      p99Ms: round(percentile(delays, 99)),
      maxMs: round(delays.at(-1)),
    }
  } finally {
    await nodeA.stop()
    await nodeB.stop()
  }
}

// ------------------------------------------------------------------------------------------------ run

async function runScenario(scenario, ctx, options) {
  const settings = { databaseUrl: ctx.url, secret: ctx.secret, env: { API_KEYS: ctx.apiKeys, ...scenario.env } }
  const profileName = `${scenario.name}${options.rounds > 1 ? `.round${ctx.round}` : ''}.cpuprofile`
  const profiling = options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`, `--cpu-prof-name=${profileName}`] : []
  const execArgv = scenario.server === 'service' ? [...SERVICE_NODE_FLAGS, ...profiling] : profiling
  const statsBefore = await tableStats(ctx.sql)
  const revokedBefore = ctx.revoked
  const server = await startServer(scenario.server, settings, execArgv)
  const base = `http://127.0.0.1:${server.port}`
  const request = scenario.request(ctx)
  const loadOptions = { connections: options.connections }
  let unmeasured = 1
  await probe(base, scenario, ctx)
  let warm
  if (scenario.warm !== undefined) {
    // Entries live cacheTtl seconds: the warm pass must leave the whole measurement inside the TTL.
    const budgetMs = Math.max(1000, (scenario.cacheTtl - options.duration - 1) * 1000)
    const toWarm = Math.min(ctx.rows, CACHE_MAX_ENTRIES)
    const result = await load(base, scenario.warm(ctx), { ...loadOptions, amount: toWarm, stopAfterMs: budgetMs })
    // Tokens 0 .. warmed-1 were validated (the last `connections` may have been cut off when the pass stopped).
    ctx.warmed = result.requests >= toWarm ? toWarm : Math.max(1, result.requests - options.connections)
    warm = { requests: result.requests, seconds: result.seconds, warmed: ctx.warmed, non2xx: result.non2xx, errors: result.errors }
    unmeasured += result.sent
  } else if (options.warmup > 0) {
    unmeasured += (await load(base, request, { ...loadOptions, duration: options.warmup })).sent
  }
  const cacheBefore = scenario.cacheTtl === undefined ? undefined : await cacheCounts(base)
  const before = { server: await server.usage(), postgres: postgresCpuMs(ctx.postmasterPid), machine: machineCpuMs(), loadgen: process.cpuUsage() }
  const result = await load(base, request, { ...loadOptions, duration: options.duration })
  const after = { server: await server.usage(), postgres: postgresCpuMs(ctx.postmasterPid), machine: machineCpuMs(), loadgen: process.cpuUsage(before.loadgen) }
  const cacheAfter = scenario.cacheTtl === undefined ? undefined : await cacheCounts(base)
  await server.stop()
  // Backends flush their table statistics when they exit, which the pool's end has just made them do.
  await sleep(500)
  const statsAfter = await tableStats(ctx.sql)
  // With more rounds to come, the sessions this run revoked are made active again, so that every round reads the same set.
  if (scenario.name === 'revoke' && ctx.round < options.rounds) await restoreRevoked(ctx, revokedBefore)

  const perRequestUs = (ms) => (ms === undefined ? null : Math.round((ms * 1000) / Math.max(1, result.requests)))
  const serverMs = (after.server.cpu.user + after.server.cpu.system - before.server.cpu.user - before.server.cpu.system) / 1000
  const postgresMs = before.postgres === undefined || after.postgres === undefined ? undefined : after.postgres - before.postgres
  const loadgenMs = (after.loadgen.user + after.loadgen.system) / 1000
  const machineBusyMs = after.machine.busy - before.machine.busy
  const machineTotalMs = after.machine.total - before.machine.total
  const totalRequests = unmeasured + result.sent
  const tables = statsDelta(statsBefore, statsAfter)
  const out = {
    label: scenario.label,
    env: scenario.env ?? {},
    ...result,
    cpu: {
      // CPU time per measured request, in microseconds, split by process; "other" is what the rest of the machine used meanwhile.
      serverUsPerRequest: perRequestUs(serverMs),
      postgresUsPerRequest: perRequestUs(postgresMs),
      loadgenUsPerRequest: perRequestUs(loadgenMs),
      otherProcessesUsPerRequest: postgresMs === undefined ? null : perRequestUs(Math.max(0, machineBusyMs - serverMs - postgresMs - loadgenMs)),
      machineBusyPct: Math.round((machineBusyMs / machineTotalMs) * 1000) / 10,
    },
    memory: { rssMB: mb(after.server.rssBytes), peakRssMB: mb(after.server.peakRssBytes), heapUsedMB: mb(after.server.heapUsedBytes) },
    // Row counts from pg_stat_user_tables, over the server's whole life (probe, warm-up and measurement: totalRequests).
    database: { totalRequests, tables, sessionsRowsWrittenPerRequest: round3(((tables.sessions?.updated ?? 0) + (tables.sessions?.inserted ?? 0)) / totalRequests) },
  }
  if (warm !== undefined) out.cacheWarmPass = warm
  if (cacheBefore !== undefined) {
    const hits = cacheAfter.hits - cacheBefore.hits
    const misses = cacheAfter.misses - cacheBefore.misses
    out.cache = { hits, misses, hitRatePct: Math.round((hits / Math.max(1, hits + misses)) * 1000) / 10 }
  }
  // Revokes that found their session already revoked (the set used up): no-op updates, no audit event.
  if (scenario.name === 'revoke') out.repeatedRevokes = Math.max(0, totalRequests - 1 - (tables.sessions?.updated ?? 0))
  if (options.cpuProf) out.profile = summariseProfile(path.join(ctx.profileDir, profileName), totalRequests)
  return out
}

function median(values) {
  const sorted = values.filter((v) => v !== null && v !== undefined).sort((a, b) => a - b)
  if (sorted.length === 0) return null
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : Math.round(((sorted[mid - 1] + sorted[mid]) / 2) * 100) / 100
}

// With --rounds > 1: the median of each figure over the rounds (errors and counts summed, memory at its largest).
function aggregate(list) {
  if (list.length === 1) return list[0]
  const med = (f) => median(list.map(f))
  const sum = (f) => list.reduce((a, r) => a + (f(r) ?? 0), 0)
  const max = (f) => Math.max(...list.map(f))
  const out = {
    label: list[0].label,
    env: list[0].env,
    requests: sum((r) => r.requests),
    sent: sum((r) => r.sent),
    seconds: sum((r) => r.seconds),
    reqPerSec: med((r) => r.reqPerSec),
    reqPerSecRange: [Math.min(...list.map((r) => r.reqPerSec)), max((r) => r.reqPerSec)],
    p50: med((r) => r.p50),
    p90: med((r) => r.p90),
    p99: med((r) => r.p99),
    maxMs: max((r) => r.maxMs ?? 0),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    cpu: Object.fromEntries(Object.keys(list[0].cpu).map((k) => [k, med((r) => r.cpu[k])])),
    memory: Object.fromEntries(Object.keys(list[0].memory).map((k) => [k, max((r) => r.memory[k])])),
    database: { totalRequests: sum((r) => r.database.totalRequests), sessionsRowsWrittenPerRequest: med((r) => r.database.sessionsRowsWrittenPerRequest) },
  }
  if (list[0].cache !== undefined) {
    const hits = sum((r) => r.cache.hits)
    const misses = sum((r) => r.cache.misses)
    out.cache = { hits, misses, hitRatePct: Math.round((hits / Math.max(1, hits + misses)) * 1000) / 10 }
  }
  if (list[0].repeatedRevokes !== undefined) out.repeatedRevokes = sum((r) => r.repeatedRevokes)
  out.rounds = list
  return out
}

const mb = (bytes) => Math.round((bytes / 1024 / 1024) * 10) / 10
const round3 = (x) => Math.round(x * 1000) / 1000

function ratioOf(results, { of: [a, b], metric }) {
  if (results[a] === undefined || results[b] === undefined) return null
  const x = results[a][metric]
  const y = results[b][metric]
  return x === null || y === null || y === 0 ? null : Math.round((x / y) * 100) / 100
}

function printTable(results, rounds) {
  const header = ['scenario', 'req/s', ...(rounds > 1 ? ['(range)'] : []), 'p50 ms', 'p99 ms', 'errors', 'non-2xx', 'rows written/req', 'CPU µs/req: server', 'postgres', 'load gen', 'others', 'RSS MB']
  const rows = Object.entries(results).map(([name, r]) => [
    name + (r.cache ? ` (hits ${r.cache.hitRatePct}%)` : ''),
    String(r.reqPerSec), ...(rounds > 1 ? [`${r.reqPerSecRange[0]}-${r.reqPerSecRange[1]}`] : []), String(r.p50), String(r.p99), String(r.errors + r.timeouts), String(r.non2xx),
    String(r.database.sessionsRowsWrittenPerRequest), String(r.cpu.serverUsPerRequest), String(r.cpu.postgresUsPerRequest ?? '-'),
    String(r.cpu.loadgenUsPerRequest), String(r.cpu.otherProcessesUsPerRequest ?? '-'), String(r.memory.rssMB),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  log(line(header))
  log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of rows) log(line(r))
}

async function main() {
  const options = parseOptions(process.argv.slice(2))
  const scenarios = selectScenarios(options)
  const watchdog = setTimeout(() => {
    console.error(`the bench ran longer than --max-minutes ${options.maxMinutes}: aborting`)
    void cleanUp().finally(() => process.exit(1))
  }, options.maxMinutes * 60_000)
  watchdog.unref()
  const startedAt = new Date()
  log(`session-service bench: ${options.rows.toLocaleString('en')} rows, ${options.connections} connections, ${options.duration} s per scenario (+${options.warmup} s warm-up)${options.rounds > 1 ? `, ${options.rounds} rounds (medians reported)` : ''}, on 127.0.0.1; aborts after ${options.maxMinutes} min`)
  log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${mb(os.totalmem()) / 1024 | 0} GiB, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, node ${process.version}`)

  const { adminUrl, embedded, postmasterPid: embeddedPostmaster } = await openServer()
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
  cleanups.push(() => admin.end({ timeout: 5 }))
  const dbName = `bench_${randomBytes(6).toString('hex')}`
  await admin.unsafe(`create database ${dbName}`)
  cleanups.push(() => admin.unsafe(`drop database if exists ${dbName} with (force)`))
  log(`database ${dbName} created${embedded ? '' : ' on DATABASE_URL\'s server'} (dropped at the end)`)
  const url = withDatabase(adminUrl, dbName)
  // Migrations and the fill on a connection of their own, closed afterwards: a backend flushes its table statistics when it
  // exits, so none of the fill's rows turn up in the first scenario's counts.
  const fillSql = postgres(url, { max: 1, onnotice: () => {} })
  cleanups.push(() => fillSql.end({ timeout: 5 }))
  const { migrate } = await import('../dist/migrate.js')
  await migrate(fillSql)
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  cleanups.push(() => sql.end({ timeout: 5 }))
  const [{ version }] = await sql`select version()`
  let postmasterPid = embeddedPostmaster
  if (postmasterPid === undefined) {
    // A local server we may read the pid file of: then its CPU is accounted too.
    try {
      const [{ data_directory: dir }] = await sql`select current_setting('data_directory') as data_directory`
      postmasterPid = Number(fs.readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]) || undefined
    } catch {
      postmasterPid = undefined
    }
  }

  const tables = {
    auditEvents: scenarios.some((s) => s.name === 'create' || s.name === 'revoke'),
    expressSessions: scenarios.some((s) => s.server === 'express-session'),
  }
  log(`filling ${options.rows.toLocaleString('en')} rows by SQL into: sessions${tables.auditEvents ? ', audit_events' : ''}${tables.expressSessions ? ', connect-pg-simple\'s "session"' : ''}…`)
  const fill = await fillTables(fillSql, options.rows, tables)
  await fillSql.end({ timeout: 5 })
  await sleep(1000)
  log(`filled in ${fill.fillSeconds} s (+ ${fill.vacuumSeconds} s vacuum, analyze and checkpoint); sessions ${mb(fill.bytes.sessions)} MB, audit_events ${mb(fill.bytes.audit_events)} MB, "session" ${mb(fill.bytes.express_sessions)} MB`)

  const secret = randomBytes(24).toString('base64url')
  const apiSecret = randomBytes(24).toString('base64url')
  const sign = require(createRequire(require.resolve('express-session')).resolve('cookie-signature')).sign
  // A multiplier coprime with the set size turns the revoke counter into a permutation of it.
  let stride = 1_000_003
  const gcd = (a, b) => (b === 0 ? a : gcd(b, a % b))
  while (gcd(stride, options.rows) !== 1) stride += 2
  const ctx = {
    url, sql, rows: options.rows, secret, sign, postmasterPid,
    apiKeys: `bench:${apiSecret}`,
    bearer: `Bearer ${apiSecret}`,
    random: () => Math.floor(Math.random() * options.rows),
    warmed: options.rows,
    randomWarmed: () => Math.floor(Math.random() * ctx.warmed),
    revoked: 0,
    stride,
    nextToRevoke() { return ((ctx.revoked++ % options.rows) * stride) % options.rows },
    profileDir: path.resolve('bench-profiles'),
  }
  if (options.cpuProf) fs.mkdirSync(ctx.profileDir, { recursive: true })

  const runs = Object.fromEntries(scenarios.map((s) => [s.name, []]))
  for (let round = 1; round <= options.rounds; round++) {
   for (const scenario of scenarios) {
    ctx.round = round
    log(`\n▶ ${scenario.name}${options.rounds > 1 ? ` (round ${round} of ${options.rounds})` : ''}: ${scenario.label}`)
    const r = await runScenario(scenario, ctx, options)
    runs[scenario.name].push(r)
    log(`  ${r.reqPerSec} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.errors + r.timeouts} errors, ${r.non2xx} non-2xx; CPU µs/req: server ${r.cpu.serverUsPerRequest}, postgres ${r.cpu.postgresUsPerRequest ?? '-'}, load generator ${r.cpu.loadgenUsPerRequest}, other processes ${r.cpu.otherProcessesUsPerRequest ?? '-'} (machine ${r.cpu.machineBusyPct}% busy); RSS ${r.memory.rssMB} MB`)
    if (r.cache) log(`  cache: ${r.cache.hitRatePct}% hits (${r.cache.hits} hits, ${r.cache.misses} misses); the warm pass validated ${r.cacheWarmPass.warmed} sessions in ${r.cacheWarmPass.seconds} s, the measurement drew from those`)
    for (const [table, t] of Object.entries(r.database.tables)) {
      if (Object.values(t).some((v) => v !== 0)) log(`  table ${table}: ${t.inserted} inserted, ${t.updated} updated (${t.hotUpdated} HOT), ${t.deleted} deleted, ${t.indexScans} index scans, ${t.seqScans} sequential scans (${r.database.totalRequests} requests sent)`)
    }
    if (r.profile) {
      log(`  CPU profile ${r.profile.file}: ${r.profile.busyMs} ms busy, ${r.profile.usPerRequest} µs per request sent; self time by area:`)
      for (const a of r.profile.areas.slice(0, 12)) log(`    ${String(a.pct).padStart(5)}%  ${String(a.usPerRequest).padStart(5)} µs/req  ${a.area}`)
      log('  top functions (self time):')
      for (const f of r.profile.frames) log(`    ${String(f.pct).padStart(5)}%  ${String(f.usPerRequest).padStart(5)} µs/req  ${f.frame}`)
    }
   }
  }
  const results = Object.fromEntries(Object.entries(runs).map(([name, list]) => [name, aggregate(list)]))
  let revocation
  if (options.revocationTrials > 0) {
    log(`\n▶ revocation across nodes: ${options.revocationTrials} trials, two nodes with SESSION_CACHE_TTL=30`)
    revocation = await revocationTrials(ctx, options.revocationTrials)
    log(`  refused by the second node after p50 ${revocation.p50Ms} ms, p99 ${revocation.p99Ms} ms, max ${revocation.maxMs} ms from the revoke's answer; ${revocation.staleAnswers} validates answered 200 meanwhile; ${revocation.cacheHitsOnNodeB} cache hits on that node`)
  }

  log(`\nResults${options.rounds > 1 ? ` (medians of ${options.rounds} rounds)` : ''}: p50/p99 of 2xx answers; rows written/req: inserts + updates of the sessions table per request (pg_stat_user_tables);`)
  log('CPU µs/req: CPU time per request of the server process, Postgres, the load generator, and every other process on the machine meanwhile\n')
  printTable(results, options.rounds)
  const targets = TARGETS.map((t) => {
    const value = ratioOf(results, t)
    return { name: t.name, value, target: `${t.op} ${t.target}`, met: value === null ? null : t.op === '>=' ? value >= t.target : value <= t.target }
  })
  if (revocation !== undefined) {
    const share = revocation.withinMs100 / revocation.trials
    targets.push({ name: `revocation refused by a second node within 100 ms, share of ${revocation.trials} trials`, value: Math.round(share * 1000) / 1000, target: '>= 0.99', met: share >= 0.99 })
  }
  const info = INFO_RATIOS.map((t) => ({ name: t.name, value: ratioOf(results, t) }))
  log('\nTargets (ratios within this run)\n')
  for (const t of targets) log(`  ${t.met === null ? 'n/a   ' : t.met ? 'MET   ' : 'MISSED'}  ${t.name}: ${t.value ?? '-'} (target ${t.target})`)
  for (const t of info) log(`  info    ${t.name}: ${t.value ?? '-'}`)
  const serviceRss = Object.entries(results).filter(([name]) => SCENARIOS.find((s) => s.name === name).server === 'service').map(([, r]) => r.memory)
  if (serviceRss.length > 0) log(`\nservice process RSS after its run: ${Math.max(...serviceRss.map((m) => m.rssMB))} MB at most (peak ${Math.max(...serviceRss.map((m) => m.peakRssMB))} MB) with ${options.rows.toLocaleString('en')} sessions in the table`)

  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), loadAverageAtStart: os.loadavg(), node: process.version, postgres: version, database: embedded ? 'embedded (temporary)' : 'DATABASE_URL server' },
    options: { rows: options.rows, connections: options.connections, duration: options.duration, warmup: options.warmup, rounds: options.rounds, only: options.only ?? null, diagnostics: options.diagnostics, cpuProf: options.cpuProf, revocationTrials: options.revocationTrials },
    fill,
    scenarios: results,
    targets,
    ratios: info,
    revocation: revocation ?? null,
  }
  fs.writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`)
  log(`\nall figures: ${path.relative(process.cwd(), options.json) || options.json}`)
  clearTimeout(watchdog)
}

try {
  await main()
} catch (err) {
  console.error(`bench failed: ${err.stack ?? err}`)
  process.exitCode = 1
} finally {
  await cleanUp()
}
