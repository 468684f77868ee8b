// deploy/rolling-update.sh against real processes. There is no Docker engine here, so the script's DOCKER points at a
// stand-in (tests/support/fake-docker) that hands each docker command to this test, which does what the engine
// would: `compose run migrate` runs the real migrate, `compose up -d --no-deps <node>` stops that node's service process
// with SIGTERM and starts a new one on its port, and `inspect` reports the health the compose healthcheck would (the
// same path, answered within 1 s, "starting" until start_period and the retries are over). The nodes sit behind the real nginx with
// deploy/nginx.conf while a stream of validations runs through it.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { freshDatabase } from '../helpers/db.js'
import { findNginx, NGINX_MISSING, renderNginxConf, startNginx } from '../support/nginx.js'
import { ensureBuilt, freePort, ROOT, startService, type Service } from '../support/process.js'

const SCRIPT = path.join(ROOT, 'deploy', 'rolling-update.sh')
const FAKE_DOCKER = path.join(ROOT, 'tests', 'support', 'fake-docker')
const NODES = ['session-1', 'session-2', 'session-3']
const APP_KEY = 'rolling-app-secret-0123456789abcdef'
const NGINX_KEY = 'rolling-nginx-secret-0123456789abcdef'
// The script's default wait after a node is healthy, which the test leaves as it is.
const SETTLE_MS = 5_000

interface ComposeHealthcheck { test: string[]; interval: string; start_period: string; retries: number }
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { healthcheck: ComposeHealthcheck }>
}
const healthcheck = compose.services['session-1'].healthcheck
// What the compose healthcheck asks, and how long a new container that never answered counts as "starting": failures
// count only after start_period, and it takes `retries` of them, one per interval, to make it unhealthy.
const HEALTH_PATH = /http:\/\/127\.0\.0\.1:8080(\/[a-z]+)/.exec(healthcheck.test.join(' '))?.[1] ?? '/missing'
const seconds = (value: string) => Number(/^(\d+)s$/.exec(value)?.[1] ?? 0) * 1000
const STARTING_MS = seconds(healthcheck.start_period) + healthcheck.retries * seconds(healthcheck.interval)

const nginxBin = findNginx()
// Three nodes replaced one by one, each waited for and then SETTLE seconds more, plus the two refusals: about a minute
// on an idle machine, several on a busy one (where a node can take 30 s to start).
t.setTimeout(600_000)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Container {
  id: string
  node: string
  service: Service
  startedAt: number
  passed: boolean
}

interface Command {
  at: number
  args: string[]
  stdout: string
}

interface Reply {
  status: number
  node: string
  at: number
}

t.test('deploy/rolling-update.sh with real processes behind nginx', { skip: nginxBin === undefined ? NGINX_MISSING : false }, async (t) => {
  await ensureBuilt(t)
  t.ok(healthcheck.test.join(' ').includes(HEALTH_PATH) && STARTING_MS > 0, `the compose healthcheck asks ${HEALTH_PATH}; a new node is "starting" for up to ${STARTING_MS} ms`)
  const { url, sql } = await freshDatabase(t)
  await sql.end({ timeout: 5 })

  const ports: number[] = []
  while (ports.length < NODES.length) {
    const port = await freePort()
    if (!ports.includes(port)) ports.push(port)
  }
  const env = { HOST: '127.0.0.1', DATABASE_URL: url, MIGRATE: 'false', API_KEYS: `app:${APP_KEY},nginx:${NGINX_KEY}`, LOG_LEVEL: 'warn', DATABASE_POOL_MAX: '5' }

  // The engine's view: each node's current container, and every command the script ran.
  const containers = new Map<string, Container>()
  const commands: Command[] = []
  let generation = 0
  // The next `up` of this node starts a release that fails at start (here: an invalid PORT).
  let broken: string | undefined
  const running = (container: Container | undefined) =>
    container !== undefined && container.service.child.exitCode === null && container.service.child.signalCode === null
  const startContainer = (node: string): Container => {
    const port = ports[NODES.indexOf(node)]
    const service = startService(t, { ...env, PORT: broken === node ? 'not-a-port' : String(port) }, { port })
    const container = { id: `${node}-${++generation}`, node, service, startedAt: Date.now(), passed: false }
    containers.set(node, container)
    return container
  }

  const engine = async (args: string[]): Promise<{ stdout?: string; stderr?: string; code?: number }> => {
    const unexpected = { stderr: `fake docker: unexpected command: docker ${args.join(' ')}\n`, code: 2 }
    if (args[0] === 'inspect') {
      // inspect --format <template> <id>: the template must read the health status; the answer is what it would print.
      const [, flag, format, id] = args
      if (flag !== '--format' || !format.includes('.State.Health.Status')) return unexpected
      const container = [...containers.values()].find((candidate) => candidate.id === id)
      if (container === undefined) return { stderr: `Error: No such object: ${id}\n`, code: 1 }
      if (!running(container)) return { stdout: 'exited\n' }
      const ok = await fetch(`${container.service.base}${HEALTH_PATH}`, { signal: AbortSignal.timeout(1_000) }).then((res) => res.status === 200, () => false)
      if (ok) container.passed = true
      const status = ok ? 'healthy' : !container.passed && Date.now() - container.startedAt < STARTING_MS ? 'starting' : 'unhealthy'
      return { stdout: `${status}\n` }
    }
    if (args[0] !== 'compose') return unexpected
    const [, sub, ...rest] = args
    if (sub === 'build' && rest.length === 0) return {}
    if (sub === 'ps' && rest.length === 2 && rest[0] === '-q' && NODES.includes(rest[1])) {
      const container = containers.get(rest[1])
      return { stdout: running(container) ? `${container!.id}\n` : '' }
    }
    if (sub === 'run' && rest.join(' ') === '--rm --no-deps -T migrate') {
      // The compose service's command, with its environment: the real migrations against the real database.
      const child = spawn(process.execPath, ['dist/migrate-cli.js'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
      const code = await new Promise<number>((resolve) => child.once('exit', (status) => resolve(status ?? 1)))
      return { stdout: out, code }
    }
    if (sub === 'up' && rest[0] === '-d' && rest[1] === '--no-deps' && NODES.includes(rest.at(-1)!) && rest.slice(2, -1).every((arg) => arg === '--force-recreate')) {
      // Compose stops the old container (SIGTERM, then SIGKILL after stop_grace_period 15 s) and starts the new one.
      const node = rest.at(-1)!
      const old = containers.get(node)
      if (running(old)) {
        old!.service.child.kill('SIGTERM')
        if ((await old!.service.waitForExit(15_000)) === undefined) {
          old!.service.child.kill('SIGKILL')
          await old!.service.exited
        }
      }
      startContainer(node)
      return {}
    }
    return unexpected
  }

  const control = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
    req.on('end', () => {
      // The stand-in sends its arguments one a line, and prints the body: to stderr when the exit status is not 0.
      const args = body.split('\n')
      void engine(args).then((answer) => {
        commands.push({ at: performance.now(), args, stdout: answer.stdout ?? '' })
        res.setHeader('x-exit-code', String(answer.code ?? 0))
        res.end(answer.code ? `${answer.stdout ?? ''}${answer.stderr ?? ''}` : answer.stdout ?? '')
      })
    })
  })
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    control.closeAllConnections()
    control.close(() => resolve())
  }))
  const controlPort = String((control.address() as AddressInfo).port)

  // Runs the script from another directory (it must find the compose file itself) with the stand-in as its docker.
  const runScript = async (): Promise<{ code: number | null; output: string; since: number }> => {
    const since = commands.length
    const child = spawn('bash', [SCRIPT], {
      cwd: os.tmpdir(),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DOCKER: FAKE_DOCKER, FAKE_DOCKER_PORT: controlPort },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
    const code = await new Promise<number | null>((resolve) => child.once('exit', (status) => resolve(status)))
    return { code, output, since }
  }
  // The commands that change something, as "build", "run migrate", "up session-1", …
  const changes = (since: number) => commands.slice(since).map(({ args }) => args)
    .filter((args) => args[0] === 'compose' && ['build', 'run', 'up'].includes(args[1]))
    .map((args) => `${args[1]}${args[1] === 'build' ? '' : ` ${args.at(-1)}`}`)

  // Generous: on a busy machine a node can take several seconds to start.
  const waitHealthy = async (node: string) => {
    const container = containers.get(node)!
    await container.service.waitUntilServing(60_000)
    container.passed = true
  }
  // What each node's current process printed, for a failure's diagnosis.
  const diagnose = (t: { comment(...args: unknown[]): void }) => {
    for (const [node, container] of containers) {
      t.comment(`${node} (${container.id}, ${running(container) ? 'running' : 'exited'}): ${container.service.stderr().slice(-1500)} ${container.service.stdout().slice(-1500)}`)
    }
  }

  for (const node of NODES) {
    startContainer(node)
    await waitHealthy(node)
  }

  const app = http.createServer((_req, res) => res.end('{}'))
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    app.closeAllConnections()
    app.close(() => resolve())
  }))
  const lbPort = await freePort()
  await startNginx(t, nginxBin!, renderNginxConf({
    NGINX_LISTEN: `127.0.0.1:${lbPort}`,
    SESSION_UPSTREAM_1: `127.0.0.1:${ports[0]}`,
    SESSION_UPSTREAM_2: `127.0.0.1:${ports[1]}`,
    SESSION_UPSTREAM_3: `127.0.0.1:${ports[2]}`,
    APP_UPSTREAM: `127.0.0.1:${(app.address() as AddressInfo).port}`,
    NGINX_AUTH_API_KEY: NGINX_KEY,
  }), lbPort)
  const lb = `http://127.0.0.1:${lbPort}`
  const post = (route: string, body: unknown) => fetch(`${lb}${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  const tokens: string[] = []
  for (let i = 0; i < 20; i++) {
    const res = await post('/v1/sessions', { userId: `rolling-${i}` })
    t.equal(res.status, 201, 'a session created through nginx')
    tokens.push(((await res.json()) as { token: string }).token)
  }

  await t.test('refuses to start while a node is unhealthy, and changes nothing', async (t) => {
    // A hung node: its container runs, but the healthcheck gets no answer.
    const hung = containers.get('session-3')!.service
    hung.child.kill('SIGSTOP')
    let result
    try {
      result = await runScript()
    } finally {
      hung.child.kill('SIGCONT')
    }
    t.equal(result.code, 1, 'exit status 1')
    t.match(result.output, /session-3 is unhealthy/, 'it says which node and why')
    t.match(result.output, /refusing to go on/, 'and that it refuses')
    t.same(changes(result.since), [], 'no build, no migrate, no node replaced')
    await waitHealthy('session-3')
    t.comment(`refusal: ${result.output.trim().split('\n').join(' | ')}`)
  })

  await t.test('build, migrate alone, then one node at a time, each healthy and settled before the next: zero failed validations', async (t) => {
    const before = NODES.map((node) => containers.get(node)!.id)
    const replies: Reply[] = []
    let streaming = true
    const loops = Array.from({ length: 4 }, async (_, loop) => {
      for (let n = loop; streaming; n++) {
        const at = performance.now()
        try {
          const res = await post('/v1/sessions/validate', { token: tokens[n % tokens.length] })
          await res.arrayBuffer()
          replies.push({ status: res.status, node: res.headers.get('x-upstream')?.split(', ').at(-1) ?? '', at })
        } catch {
          replies.push({ status: 0, node: '', at })
        }
      }
    })
    const started = performance.now()
    let result
    try {
      result = await runScript()
    } finally {
      streaming = false
      await Promise.all(loops)
    }
    const took = Math.round(performance.now() - started)
    t.equal(result.code, 0, 'exit status 0')
    if (result.code !== 0) {
      t.comment(result.output)
      diagnose(t)
    }
    t.same(changes(result.since), ['build', 'run migrate', 'up session-1', 'up session-2', 'up session-3'],
      'build, then migrate, then session-1, session-2, session-3, one at a time')
    t.match(result.output, /\$ .*compose run --rm --no-deps -T migrate/, 'it prints the commands it runs')
    const after = NODES.map((node) => containers.get(node)!.id)
    t.ok(after.every((id, i) => id !== before[i]) && NODES.every((node) => running(containers.get(node))), `every node was replaced and runs (${after.join(', ')})`)

    // Before each node is replaced, every node answered healthy; after each, the script waited SETTLE from its healthy.
    const run = commands.slice(result.since)
    const ups = run.map((command, i) => ({ command, i })).filter(({ command }) => command.args[1] === 'up')
    const steps: string[] = []
    for (const [k, { command, i }] of ups.entries()) {
      const node = command.args.at(-1)!
      const checksBefore = run.slice(k === 0 ? 0 : ups[k - 1].i, i).filter(({ args }) => args[0] === 'inspect')
      const healthyBefore = new Set(checksBefore.filter(({ stdout }) => stdout.trim() === 'healthy').map(({ args }) => args.at(-1)!.replace(/-\d+$/, '')))
      t.same([...healthyBefore].sort(), NODES, `all three nodes were seen healthy right before ${node} was replaced`)
      const nextUp = ups[k + 1]?.i ?? run.length
      const ownHealthy = run.slice(i, nextUp).find(({ args, stdout }) => args[0] === 'inspect' && args.at(-1)!.startsWith(`${node}-`) && stdout.trim() === 'healthy')
      t.ok(ownHealthy, `${node} was seen healthy before the script went on`)
      if (ownHealthy !== undefined && ups[k + 1] !== undefined) {
        const gap = ups[k + 1].command.at - ownHealthy.at
        t.ok(gap >= SETTLE_MS - 250, `then ${Math.round(gap)} ms passed before the next node (SETTLE ${SETTLE_MS} ms)`)
      }
      steps.push(`${node}: healthy ${ownHealthy === undefined ? '?' : Math.round(ownHealthy.at - command.at)} ms after its up`)
    }

    const failed = replies.filter((reply) => reply.status !== 200)
    t.ok(replies.length > 100, `a steady stream (${replies.length} validations)`)
    t.equal(failed.length, 0, `every validation answered 200 (${failed.length} failed: ${JSON.stringify(failed.slice(0, 5))})`)
    for (const node of NODES) {
      const replaced = ups.find(({ command }) => command.args.at(-1) === node)!.command.at
      t.ok(replies.some((reply) => reply.node === node && reply.at > replaced + 1_000 && reply.status === 200),
        `${node} answered again after it was replaced`)
    }
    t.comment(`rolling update: ${took} ms, ${replies.length} validations through nginx, ${failed.length} failed; ${steps.join('; ')}`)
  })

  await t.test('stops at a node that does not become healthy, and leaves the nodes after it alone', async (t) => {
    broken = 'session-2'
    let result
    try {
      result = await runScript()
    } finally {
      broken = undefined
    }
    t.equal(result.code, 1, 'exit status 1')
    t.same(changes(result.since), ['build', 'run migrate', 'up session-1', 'up session-2'], 'session-3 was never touched')
    t.match(result.output, /session-2 is not running/, 'it says which node and what it saw')
    t.ok(running(containers.get('session-3')), 'session-3 still runs')
    t.comment(`a failed release: ${result.output.trim().split('\n').slice(-2).join(' | ')}`)
    // Put session-2 back, as an operator would after fixing the release.
    await engine(['compose', 'up', '-d', '--no-deps', 'session-2'])
    await waitHealthy('session-2')
  })
})
