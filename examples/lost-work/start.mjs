// `npm run example`: the session service (embedded database, or DATABASE_URL) and two instances of the lost-work app on loopback.
// Ctrl-C stops all three. Settings (environment): EXAMPLE_SERVICE_PORT (8091), EXAMPLE_APP_PORTS (3001,3002),
// EXAMPLE_IDLE_TIMEOUT (300 s), EXAMPLE_WARN_BEFORE (120 s), EXAMPLE_TOUCH_EVERY (60 s), DATABASE_URL (unset: embedded).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..', '..')
const main = path.join(root, 'dist', 'main.js')
const env = process.env

if (!existsSync(main)) {
  process.stderr.write('dist/main.js is missing: run `npm run example` (it builds first) or `npm run build`\n')
  process.exit(1)
}

const whole = (value, fallback) => (/^\d+$/.test(value ?? '') && Number(value) > 0 ? Number(value) : fallback)
const servicePort = whole(env.EXAMPLE_SERVICE_PORT, 8091)
const appPorts = (env.EXAMPLE_APP_PORTS ?? '3001,3002').split(',').map((p) => whole(p.trim(), 0)).filter((p) => p > 0)
const idleTimeout = whole(env.EXAMPLE_IDLE_TIMEOUT, 300)
const warnBefore = whole(env.EXAMPLE_WARN_BEFORE, Math.min(120, Math.max(1, Math.floor(idleTimeout / 3))))
const touchEvery = whole(env.EXAMPLE_TOUCH_EVERY, Math.min(60, Math.max(1, Math.floor(idleTimeout / 10))))
const names = appPorts.map((_, i) => String.fromCharCode(65 + i))
const serviceUrl = `http://127.0.0.1:${servicePort}`
const apiKey = randomBytes(24).toString('base64url')
const peers = names.map((name, i) => `${name}=http://127.0.0.1:${appPorts[i]}`).join(',')

const children = []
let stopping = false

function start(label, args, childEnv) {
  const child = spawn(process.execPath, args, { cwd: root, env: { PATH: env.PATH ?? '/usr/bin:/bin', ...childEnv }, stdio: ['ignore', 'pipe', 'pipe'] })
  const prefix = (chunk) => chunk.toString().split('\n').filter(Boolean).map((line) => `[${label}] ${line}\n`).join('')
  child.stdout.on('data', (chunk) => process.stdout.write(prefix(chunk)))
  child.stderr.on('data', (chunk) => process.stderr.write(prefix(chunk)))
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  void child.exited.then(({ code, signal }) => {
    if (!stopping) {
      process.stderr.write(`[${label}] exited unexpectedly (${signal ?? code}); stopping the example\n`)
      void stop(1)
    }
  })
  children.push({ label, child })
  return child
}

async function until(url, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && !stopping) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
      if (res.status === 200) return
    } catch {
      // not yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s`)
}

// Apps first, then the service (its embedded database stops with it); each gets SIGTERM, then SIGKILL after a bound.
async function stop(exitCode) {
  if (stopping) return
  stopping = true
  for (const group of [children.filter((c) => c.label !== 'service'), children.filter((c) => c.label === 'service')]) {
    await Promise.all(group.map(async ({ child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await child.exited
      clearTimeout(timer)
    }))
  }
  process.exit(exitCode)
}

for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => void stop(0))

try {
  start('service', [main], {
    HOST: '127.0.0.1',
    PORT: String(servicePort),
    API_KEYS: `example:${apiKey}`,
    SESSION_IDLE_TIMEOUT: String(idleTimeout),
    // The idle deadline a page is told must move when it touches; coalescing stays well under the idle timeout.
    SESSION_TOUCH_INTERVAL: String(Math.min(60, Math.max(1, Math.floor(idleTimeout / 10)))),
    // Plain http on loopback: a Secure cookie would not be sent back by every browser.
    COOKIE_SECURE: 'false',
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
    DATA_DIR: env.DATA_DIR ?? path.join(root, '.data', 'example'),
    EMBEDDED_DB_PORT: env.EMBEDDED_DB_PORT ?? '15434',
    ...(env.DATABASE_URL === undefined ? {} : { DATABASE_URL: env.DATABASE_URL }),
  })
  await until(`${serviceUrl}/readyz`, 'the session service', 60_000)
  names.forEach((name, i) => start(`app ${name}`, [path.join(here, 'app.mjs')], {
    PORT: String(appPorts[i]),
    INSTANCE: name,
    SERVICE_URL: serviceUrl,
    SERVICE_API_KEY: apiKey,
    WARN_BEFORE: String(warnBefore),
    TOUCH_EVERY: String(touchEvery),
    PEERS: peers,
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
  }))
  await Promise.all(appPorts.map((port, i) => until(`http://127.0.0.1:${port}/healthz`, `instance ${names[i]}`, 30_000)))
  const apps = appPorts.map((port) => `http://127.0.0.1:${port}`)
  process.stdout.write([
    '',
    `lost-work example: open ${apps[0]}/ (instance A)${apps[1] === undefined ? '' : ` or ${apps[1]}/form (instance B, same session)`}`,
    `  session service ${serviceUrl}; idle timeout ${idleTimeout} s, warning ${warnBefore} s before it; Ctrl-C stops everything`,
    `READY ${JSON.stringify({ service: serviceUrl, apps, idleTimeout, warnBefore, touchEvery })}`,
    '',
  ].join('\n'))
} catch (err) {
  process.stderr.write(`the example did not start: ${err.message}\n`)
  await stop(1)
}
