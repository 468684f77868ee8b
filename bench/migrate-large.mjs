// Measures migrating an index on a big sessions table while a second node starts and the table takes writes:
//   node bench/migrate-large.mjs [rows]   (after npm run build; DATABASE_URL names the server, a database is created and dropped)
import { cp, mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { connect } from '../dist/db.js'
import { migrate, SQL_DIR } from '../dist/migrate.js'

const rows = Number(process.argv[2] ?? 1_000_000)
const server = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const name = `scale_big_${rows}`
const admin = postgres(server, { max: 1, onnotice: () => {} })
await admin.unsafe(`drop database if exists ${name} with (force)`)
await admin.unsafe(`create database ${name}`)
const url = server.replace(/\/postgres$/, `/${name}`)
const pool = { databasePoolMax: 4, databaseConnectTimeout: 5, databaseStatementTimeoutMs: 5000 }
const a = connect(url, pool)
const b = connect(url, pool)
const filler = postgres(url, { max: 1, onnotice: () => {} })
await migrate(a)
let t0 = performance.now()
for (let from = 1; from <= rows; from += 1_000_000) {
  const to = Math.min(rows, from + 999_999)
  await filler`
    insert into sessions (id, token_hash, user_id, policy, idle_timeout, idle_expires_at, expires_at)
    select 's_' || lpad(upper(to_hex(g)), 26, '0'), sha256(('live' || g)::bytea), 'u' || (g % 100000), 'default', 3600,
           now() + interval '1 hour', now() + interval '1 day'
      from generate_series(${from}::int, ${to}::int) g`
}
await filler`vacuum analyze sessions`
console.log(`fill ${rows} rows: ${((performance.now() - t0) / 1000).toFixed(1)} s`)

const dir = await mkdtemp(path.join(tmpdir(), 'big-migrations-'))
for (const file of await readdir(SQL_DIR)) await cp(path.join(SQL_DIR, file), path.join(dir, file))
await writeFile(path.join(dir, '900_big_index.sql'), '-- migrate: no-transaction\ndrop index concurrently if exists sessions_big_idx;\ncreate index concurrently sessions_big_idx on sessions (user_id, created_at);\n')
await writeFile(path.join(dir, '901_big_index_tx.sql'), 'create index sessions_big_tx_idx on sessions (policy, created_at);\n')

// Writes during the migration: one update a few times a second, its worst latency recorded.
let writing = true
let worst = 0
let writes = 0
const writer = (async () => {
  while (writing) {
    const started = performance.now()
    const g = 1 + Math.floor(Math.random() * rows)
    await filler`update sessions set last_seen_at = now() where id = ${'s_' + g.toString(16).toUpperCase().padStart(26, '0')}`
    worst = Math.max(worst, performance.now() - started)
    writes++
    await new Promise((r) => setTimeout(r, 100))
  }
})()
const log = (node) => (message, fields) => console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s node ${node}: ${message} ${JSON.stringify(fields ?? {})}`)
t0 = performance.now()
const first = migrate(a, { dir, log: log('A') }).then((applied) => ({ applied, s: (performance.now() - t0) / 1000 }))
await new Promise((r) => setTimeout(r, 1000))
const second = migrate(b, { dir, log: log('B') }).then((applied) => ({ applied, s: (performance.now() - t0) / 1000 }))
const [ra, rb] = await Promise.all([first, second])
writing = false
await writer
console.log(`node A applied ${ra.applied.join(',')} in ${ra.s.toFixed(1)} s; node B (started at 1 s) finished at ${rb.s.toFixed(1)} s applying ${rb.applied.length}`)
console.log(`writes during the migration: ${writes}, worst ${worst.toFixed(0)} ms`)
await Promise.all([a.end(), b.end(), filler.end()])
await admin.unsafe(`drop database if exists ${name} with (force)`)
await admin.end()
