// Runs the built service (dist/main.js) as a real child process on a free loopback port, for startup and clock tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, readFileSync, rmdirSync, statSync, readdirSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

type Tap = { teardown(fn: () => unknown): void; comment(...args: unknown[]): void }

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const MAIN = path.join(ROOT, 'dist', 'main.js')
// The node flags of `npm start` (and the image's CMD): the service under test runs as it does in production.
export const NODE_FLAGS = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } })
  .scripts.start.split(' ').filter((arg) => arg.startsWith('--'))
const BUILD_LOCK = path.join(ROOT, '.tap', 'build.lock')
// The kit (packages/client): the service imports its contract types and constants from its dist/.
const KIT = path.join(ROOT, 'packages', 'client')

function newestMtime(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs)
  }
  return newest
}

function mtimeOf(file: string): number {
  try {
    return statSync(file).mtimeMs
  } catch {
    return -1
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const fresh = () => mtimeOf(MAIN) >= Math.max(newestMtime(path.join(ROOT, 'src')), newestMtime(path.join(KIT, 'src')))

// Builds dist/ when it is missing or older than src/ (or the kit's src/). Test files run in parallel, so a lock directory makes them take turns.
export async function ensureBuilt(t: Tap): Promise<void> {
  const deadline = Date.now() + 90_000
  mkdirSync(path.dirname(BUILD_LOCK), { recursive: true })
  for (;;) {
    if (fresh()) return
    try {
      mkdirSync(BUILD_LOCK)
    } catch {
      if (Date.now() > deadline) throw new Error(`waited too long for another build (${BUILD_LOCK})`)
      // A lock older than a minute was left by a killed run.
      if (Date.now() - mtimeOf(BUILD_LOCK) > 60_000) rmdirSync(BUILD_LOCK)
      await sleep(200)
      continue
    }
    try {
      if (fresh()) return
      // The kit first (it skips itself when its dist/ is up to date): the service's build reads its .d.ts files.
      const kit = spawnSync(process.execPath, [path.join(KIT, 'build.mjs')], { cwd: KIT, encoding: 'utf8', timeout: 120_000 })
      if (kit.status !== 0) t.comment(`the kit's build exited ${kit.status}: ${(kit.stdout + kit.stderr).slice(0, 2000)}`)
      t.comment('dist/ is missing or older than src/: running tsc -p tsconfig.build.json')
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
      const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
      // tsc still emits on type errors (someone else may be mid-edit); only a missing entry point is fatal.
      if (result.status !== 0) t.comment(`tsc exited ${result.status}: ${(result.stdout + result.stderr).slice(0, 2000)}`)
      if (mtimeOf(MAIN) < 0) throw new Error('the build did not produce dist/main.js')
      return
    } finally {
      rmdirSync(BUILD_LOCK)
    }
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

// true when something accepts TCP connections on 127.0.0.1:port.
export function isListening(port: number, timeoutMs = 200): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface Service {
  child: ChildProcess
  port: number
  base: string
  stdout(): string
  stderr(): string
  exited: Promise<Exit>
  // Resolves with the exit, or undefined when the process is still running after timeoutMs.
  waitForExit(timeoutMs: number): Promise<Exit | undefined>
  // Resolves once /healthz answers 200; rejects if the process exits or timeoutMs passes first.
  waitUntilServing(timeoutMs?: number): Promise<void>
  // Every JSON log line written to stdout so far.
  logLines(): Array<Record<string, unknown>>
}

// Only the variables given reach the child (plus PATH), so the test decides the whole configuration.
export function startService(t: Tap, env: Record<string, string>, opts: { port?: number } = {}): Service {
  const port = opts.port ?? Number(env.PORT ?? 8080)
  const child = spawn(process.execPath, [...NODE_FLAGS, MAIN], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  let gone = false
  void exited.then(() => { gone = true })
  t.teardown(async () => {
    if (!gone) {
      child.kill('SIGKILL')
      await exited
    }
  })

  const waitForExit = async (timeoutMs: number): Promise<Exit | undefined> => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), timeoutMs) })
    try {
      return await Promise.race([exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  const base = `http://127.0.0.1:${port}`
  const waitUntilServing = async (timeoutMs = 15_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (gone) throw new Error(`the service exited before serving; stderr: ${err.slice(0, 2000)} stdout: ${out.slice(-2000)}`)
      try {
        const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) })
        if (res.status === 200) return
      } catch {
        // not listening yet
      }
      await sleep(50)
    }
    throw new Error(`the service did not serve /healthz within ${timeoutMs} ms; stderr: ${err.slice(0, 2000)} stdout: ${out.slice(-2000)}`)
  }

  const logLines = () => out.split('\n').filter((line) => line.trim() !== '').flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>]
    } catch {
      return []
    }
  })

  return { child, port, base, stdout: () => out, stderr: () => err, exited, waitForExit, waitUntilServing, logLines }
}

// Builds if needed, starts the service on a free loopback port with LOG_LEVEL=info, and waits until it serves.
export async function startServing(t: Tap, env: Record<string, string>): Promise<Service> {
  await ensureBuilt(t)
  const port = await freePort()
  const service = startService(t, { HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env, PORT: String(port) }, { port })
  await service.waitUntilServing()
  return service
}
