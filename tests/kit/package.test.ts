// The kit as a user gets it: packed, installed from the tarball into scratch apps in a temporary folder, compiled with the
// strictest common settings (ESM and CommonJS; moduleResolution node16, bundler and node10), started, and driven through a
// login, a validated request and a logout against the built service. Needs the npm registry (it installs Fastify, Express
// and @fastify/session into the scratch folder); without it, it skips and says so.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { freshDatabase } from '../helpers/db.js'
import { ensureBuilt, freePort, ROOT, startService } from '../support/process.js'

const KIT = path.join(ROOT, 'packages', 'client')
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const API_KEY = 'kit-test-key-0123456789abcdef'
// A Fastify 5 minor other than the service's own (package.json), so that the plugin's types meet a Fastify it was not built with.
const OTHER_FASTIFY = '~5.8.0'

const STRICT = {
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  esModuleInterop: true,
  skipLibCheck: false,
  target: 'ES2022',
  types: ['node'],
  outDir: 'out',
}

const EXPRESS_APP = `import express from 'express'
import { createClient, type Session } from '@session-service/client'
import { denialOf, sessionMiddleware } from '@session-service/client/express'

// apiKey straight from the environment: string | undefined, accepted under exactOptionalPropertyTypes.
const sessions = sessionMiddleware({ baseUrl: process.env.SERVICE_URL ?? '', apiKey: process.env.SERVICE_API_KEY, cacheTtlMs: 2000 })
const client = createClient({ baseUrl: process.env.SERVICE_URL ?? '', apiKey: process.env.SERVICE_API_KEY, timeoutMs: undefined })
const app = express()
app.use(express.json())
app.post('/login', async (req, res) => {
  const { userId } = req.body as { userId: string }
  const session: Session = await sessions.login(res, { userId, data: { via: 'express' } })
  res.json({ id: session.id })
})
app.get('/me', sessions.required, (req, res) => {
  const session: Session = sessions.current(req)
  res.json({ userId: session.userId, policy: session.policy })
})
app.get('/maybe', sessions.optional, (req, res) => {
  res.json({ reason: denialOf(req)?.reason ?? null })
})
app.get('/health', async (_req, res) => {
  res.json(await client.health())
})
app.post('/logout', async (req, res) => {
  await sessions.logout(req, res)
  res.sendStatus(204)
})
const server = app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('READY'))
process.on('SIGTERM', () => { server.close(); void sessions.close() })
`

const FASTIFY_APP = `import Fastify from 'fastify'
import type { Session } from '@session-service/client'
import { sessionOf, sessionPlugin } from '@session-service/client/fastify'

const app = Fastify()
await app.register(sessionPlugin, { baseUrl: process.env.SERVICE_URL ?? '', apiKey: process.env.SERVICE_API_KEY })
app.post<{ Body: { userId: string } }>('/login', async (req, reply) => {
  const session = await app.sessions.login(reply, { userId: req.body.userId })
  return { id: session.id }
})
app.get('/me', { preHandler: app.requireSession }, async (req) => {
  const session: Session = app.sessions.current(req)
  return { userId: session.userId, policy: session.policy }
})
app.get('/maybe', { preHandler: app.loadSession }, async (req) => ({ userId: sessionOf(req)?.userId ?? null }))
app.post('/logout', async (req, reply) => {
  await app.sessions.logout(req, reply)
  return reply.code(204).send()
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
console.log('READY')
process.on('SIGTERM', () => void app.close())
`

// Beside @fastify/session, which owns request.session: the kit's request property is renamed.
const FASTIFY_SESSION_APP = `import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import type { Session } from '@session-service/client'
import { sessionPlugin } from '@session-service/client/fastify'

const app = Fastify()
await app.register(fastifyCookie)
await app.register(fastifySession, { secret: 'a-secret-of-at-least-32-characters-long', cookieName: 'app_sid', cookie: { secure: false } })
await app.register(sessionPlugin, { baseUrl: process.env.SERVICE_URL ?? '', apiKey: process.env.SERVICE_API_KEY, decorate: 'sessionService' })
app.post<{ Body: { userId: string } }>('/login', async (req, reply) => {
  const session = await app.sessions.login(reply, { userId: req.body.userId })
  return { id: session.id }
})
app.get('/me', { preHandler: app.requireSession }, async (req) => {
  const session: Session = app.sessions.current(req)
  const plain = (req as unknown as { sessionService: Session | null }).sessionService
  // @fastify/session's own session is still request.session, typed as its own.
  return { userId: session.userId, policy: session.policy, renamed: plain?.id === session.id, appSession: typeof req.session.sessionId }
})
app.post('/logout', async (req, reply) => {
  await app.sessions.logout(req, reply)
  return reply.code(204).send()
})
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) })
console.log('READY')
process.on('SIGTERM', () => void app.close())
`

interface Setup {
  name: string
  type: 'module' | 'commonjs'
  source: string
  compilerOptions: Record<string, unknown>
}

const SETUPS: Setup[] = [
  { name: 'express-esm-node16', type: 'module', source: EXPRESS_APP, compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  { name: 'express-esm-bundler', type: 'module', source: EXPRESS_APP, compilerOptions: { module: 'esnext', moduleResolution: 'bundler' } },
  { name: 'express-cjs-node16', type: 'commonjs', source: EXPRESS_APP, compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  { name: 'express-cjs-node10', type: 'commonjs', source: EXPRESS_APP, compilerOptions: { module: 'commonjs', moduleResolution: 'node10' } },
  { name: 'fastify-other-minor-node16', type: 'module', source: FASTIFY_APP, compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
  { name: 'fastify-other-minor-bundler', type: 'module', source: FASTIFY_APP, compilerOptions: { module: 'esnext', moduleResolution: 'bundler' } },
  { name: 'fastify-with-fastify-session', type: 'module', source: FASTIFY_SESSION_APP, compilerOptions: { module: 'node16', moduleResolution: 'node16' } },
]

function run(command: string, args: string[], cwd: string, timeoutMs: number): { status: number | null; output: string; ms: number } {
  const started = Date.now()
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, npm_config_update_notifier: 'false' } })
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error === undefined ? '' : String(result.error)}`, ms: Date.now() - started }
}

function sizeOf(dir: string): number {
  let total = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    total += entry.isDirectory() ? sizeOf(full) : statSync(full).size
  }
  return total
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`

// Starts a compiled app; resolves once it prints READY.
async function startApp(t: Test, dir: string, env: Record<string, string>): Promise<void> {
  const child = spawn(process.execPath, [path.join(dir, 'out', 'app.js')], { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    child.kill('SIGKILL')
    await exited
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the app did not start in 60 s: ${output}`)), 60_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('READY')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
    void exited.then(() => reject(new Error(`the app exited: ${output}`)))
  })
}

async function call(base: string, method: string, path: string, cookie?: string, body?: unknown) {
  const headers: Record<string, string> = {}
  if (cookie !== undefined) headers.cookie = cookie
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, json: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>, setCookies: res.headers.getSetCookie() }
}

// Packing, one npm install and seven strict compilations (lib check included) take minutes; many on a loaded machine.
t.setTimeout(1_800_000)

const registry = run('npm', ['view', 'fastify@5', 'version', '--json'], os.tmpdir(), 30_000)
if (registry.status !== 0) {
  t.skip(`npm cannot reach the registry (npm view fastify: ${registry.output.trim().split('\n').slice(-1)[0]}): the packed kit is not installed into scratch apps`, async () => {})
} else {
  t.test('the packed kit installs alone, compiles under every strict setup, and runs against the service', async (t) => {
    t.setTimeout(1_700_000)
    await ensureBuilt(t)
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'session-kit-'))
    t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

    // Built by the service's build (the kit's build skips itself when up to date); packed as npm publish would, but without
    // prepack's forced rebuild, which would empty dist/ under other tests reading it.
    const build = run(process.execPath, [path.join(KIT, 'build.mjs')], KIT, 300_000)
    t.equal(build.status, 0, `the kit builds: ${build.output}`)
    const manifest = JSON.parse(readFileSync(path.join(KIT, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>
    t.equal(manifest.scripts?.prepack, 'node build.mjs --force', 'npm pack builds dist/ first (a fresh clone has none)')
    t.same(manifest.dependencies ?? {}, {}, 'no runtime dependencies')
    t.same(Object.keys(manifest.peerDependencies ?? {}).sort(), ['express', 'fastify'])
    const packed = run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], KIT, 120_000)
    t.equal(packed.status, 0, packed.output)
    const [info] = JSON.parse(packed.output.slice(packed.output.indexOf('['))) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>
    const files = info!.files.map((f) => f.path)
    for (const needed of ['dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/esm/fastify.d.ts', 'dist/esm/express.js', 'dist/cjs/index.js', 'dist/cjs/express.d.ts', 'dist/cjs/package.json', 'package.json']) {
      t.ok(files.includes(needed), `the tarball has ${needed}`)
    }
    t.same(files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(f)), [], 'nothing but dist/ and package.json: no sources, no tests')
    t.comment(`tarball ${info!.filename}: ${kib(info!.size)} packed, ${kib(info!.unpackedSize)} unpacked, ${files.length} files`)

    // One install for every app: the kit from the tarball, the frameworks from the registry.
    const rootPkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }
    writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({
      name: 'scratch-apps',
      private: true,
      dependencies: {
        '@session-service/client': `file:./${info!.filename}`,
        fastify: OTHER_FASTIFY,
        '@fastify/cookie': '^11.0.0',
        '@fastify/session': '^11.0.0',
        express: '^5.0.0',
        '@types/express': '^5.0.0',
        '@types/node': rootPkg.devDependencies['@types/node'],
      },
    }, null, 2))
    const install = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], scratch, 300_000)
    t.equal(install.status, 0, `npm install: ${install.output.slice(-2000)}`)
    const installed = path.join(scratch, 'node_modules', '@session-service', 'client')
    t.notOk(readdirSync(installed).includes('node_modules'), 'the kit brought no dependencies of its own')
    const fastifyVersion = (JSON.parse(readFileSync(path.join(scratch, 'node_modules', 'fastify', 'package.json'), 'utf8')) as { version: string }).version
    t.comment(`npm install of the scratch apps (kit + fastify ${fastifyVersion}, express, @fastify/session, types): ${(install.ms / 1000).toFixed(1)} s; the kit installed: ${kib(sizeOf(installed))}`)

    const { url, sql } = await freshDatabase(t)
    await sql.end()
    const servicePort = await freePort()
    const service = startService(t, { HOST: '127.0.0.1', PORT: String(servicePort), DATABASE_URL: url, API_KEYS: `app:${API_KEY}`, COOKIE_SECURE: 'false', LOG_LEVEL: 'warn' }, { port: servicePort })
    // Generous: the compilations around it keep the machine busy.
    await service.waitUntilServing(90_000)

    const compiled: string[] = []
    for (const setup of SETUPS) {
      await t.test(setup.name, async (t) => {
        const dir = path.join(scratch, setup.name)
        mkdirSync(dir)
        writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ private: true, type: setup.type }))
        writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...STRICT, ...setup.compilerOptions }, files: ['app.ts'] }, null, 2))
        writeFileSync(path.join(dir, 'app.ts'), setup.source)
        const tsc = run(process.execPath, [TSC, '-p', dir], dir, 180_000)
        t.equal(tsc.status, 0, `tsc passes: ${tsc.output}`)
        if (tsc.status !== 0) return
        compiled.push(setup.name)

        const port = await freePort()
        await startApp(t, dir, { PORT: String(port), SERVICE_URL: service.base, SERVICE_API_KEY: API_KEY })
        const base = `http://127.0.0.1:${port}`
        const login = await call(base, 'POST', '/login', undefined, { userId: `kit-${setup.name}` })
        t.equal(login.status, 200, 'login')
        const sid = login.setCookies.map((c) => c.split(';')[0]!).find((c) => c.startsWith('sid='))
        t.ok(sid, 'the service cookie is passed on')
        const me = await call(base, 'GET', '/me', sid)
        t.equal(me.status, 200, 'validated')
        t.match(me.json, { userId: `kit-${setup.name}`, policy: 'default' })
        if (setup.source === FASTIFY_SESSION_APP) t.match(me.json, { renamed: true, appSession: 'string' }, 'both plugins on one request')
        const out = await call(base, 'POST', '/logout', sid)
        t.equal(out.status, 204, 'logout')
        const after = await call(base, 'GET', '/me', sid)
        t.equal(after.status, 401)
        t.match(after.json, { error: { code: 'session_invalid', reason: 'revoked', revokeReason: 'logout' } })
      })
    }
    t.comment(`setups that compile and run: ${compiled.join(', ')}`)
  })
}
