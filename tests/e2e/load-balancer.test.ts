// deploy/nginx.conf in front of three real service processes on one database: any node serves any session, logout holds
// everywhere at once, kill -9 and a rolling restart lose no session and log nobody out, nginx starts and serves while a
// node's address drops packets (and such a node costs at most the connect timeout), auth_request guards an app.
import { spawn } from 'node:child_process'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { parseSetCookie } from 'set-cookie-parser'
import t from 'tap'
import { freshDatabase } from '../helpers/db.js'
import { findNginx, NGINX_MISSING, renderNginxConf, startNginx } from '../support/nginx.js'
import { ensureBuilt, freePort, startService, type Exit, type Service } from '../support/process.js'

const APP_KEY = 'e2e-app-secret-0123456789abcdef'
const NGINX_KEY = 'e2e-nginx-secret-0123456789abcdef'
// What the example app sets: a plain cookie and one near the 4 KiB browser limit, to prove nginx passes both untouched.
const APP_SET_COOKIES = ['lang=en; Path=/; HttpOnly', `pref=${'p'.repeat(3800)}; Path=/; Secure; SameSite=None`]

const nginxBin = findNginx()
// Several scenarios with node restarts: about 40 s on an idle machine, minutes on a busy one.
t.setTimeout(400_000)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Reply {
  status: number // 0: no HTTP answer at all (connection error or timeout)
  upstream: string // X-Upstream: the name of every node tried, in order
  node: string // the node that answered
  at: number // performance.now() when the request started
  ms: number
  body: any
  setCookie: string[]
  error?: string
}

interface SendOptions {
  body?: unknown
  headers?: Record<string, string>
  key?: boolean
}

async function send(base: string, method: string, path: string, { body, headers = {}, key = true }: SendOptions = {}): Promise<Reply> {
  const at = performance.now()
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${APP_KEY}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    })
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {
      // not JSON (nginx's own 401 page)
    }
    const upstream = res.headers.get('x-upstream') ?? ''
    return { status: res.status, upstream, node: upstream.split(', ').at(-1) ?? '', at, ms: performance.now() - at, body: parsed, setCookie: res.headers.getSetCookie() }
  } catch (err) {
    return { status: 0, upstream: '', node: '', at, ms: performance.now() - at, body: undefined, setCookie: [], error: (err as Error).message }
  }
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))])
}

// How a TCP connect ends within ms: accepted (the handshake completed), refused (RST: nothing listens), or timeout (no
// answer at all: the SYN was dropped).
function connectOutcome(port: number, ms: number): Promise<{ outcome: 'connected' | 'refused' | 'timeout'; socket: net.Socket }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    const timer = setTimeout(() => resolve({ outcome: 'timeout', socket }), ms)
    socket.once('connect', () => { clearTimeout(timer); resolve({ outcome: 'connected', socket }) })
    socket.once('error', () => { clearTimeout(timer); resolve({ outcome: 'refused', socket }) })
  })
}

// A listener that never accepts: its process blocks right after listen() with a backlog of 1. Once the kernel has
// completed as many handshakes as that queue holds, it drops every further SYN, so a connection to this address waits
// and times out, exactly as one to a stopped container's address on a Docker network does (on loopback, a port where
// nothing listens answers at once with a reset instead, which is not what nginx meets in production).
const NEVER_ACCEPTS = `
const server = require('node:net').createServer()
server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n')
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
})`

async function droppingAddress(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const child = spawn(process.execPath, ['-e', NEVER_ACCEPTS], { stdio: ['ignore', 'pipe', 'inherit'] })
  const held: net.Socket[] = []
  t.teardown(() => {
    for (const socket of held) socket.destroy()
    child.kill('SIGKILL')
  })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
      if (out.includes('\n')) resolve(Number(out.trim()))
    })
    child.once('exit', (code) => reject(new Error(`the listener that never accepts exited with ${code}`)))
  })
  // Fill the accept queue with connections nobody accepts; the first connect that gets no answer proves it is full.
  for (let i = 0; i < 16; i++) {
    const { outcome, socket } = await connectOutcome(port, 300)
    if (outcome === 'connected') {
      held.push(socket)
      continue
    }
    socket.destroy()
    if (outcome === 'timeout') return `127.0.0.1:${port}`
    throw new Error(`a connection to the listener that never accepts was ${outcome}`)
  }
  throw new Error('the accept queue never filled')
}

// "N failed (x × 401, y × 5xx, z errors)"
function failures(replies: Reply[]): { failed: Reply[]; text: string } {
  const failed = replies.filter((reply) => reply.status !== 200)
  const unauthorized = failed.filter((reply) => reply.status === 401).length
  const serverErrors = failed.filter((reply) => reply.status >= 500).length
  const errors = failed.filter((reply) => reply.status === 0).length
  return { failed, text: `${failed.length} failed (${unauthorized} × 401, ${serverErrors} × 5xx, ${errors} connection errors)` }
}

// From nginx's access log: how many requests it passed to another node, by what the first node did (502: refused or
// reset connection, 503: a node shutting down), and from its error log the distinct kinds of upstream error.
function retrySummary(accessLog: string, errorLog: string): string {
  const causes = new Map<string, number>()
  for (const match of accessLog.matchAll(/upstream_status=(\S+), /g)) causes.set(match[1], (causes.get(match[1]) ?? 0) + 1)
  const kinds = new Map<string, number>()
  for (const match of errorLog.matchAll(/\*\d+ (.+?) while /g)) kinds.set(match[1], (kinds.get(match[1]) ?? 0) + 1)
  const list = (map: Map<string, number>) => [...map].map(([key, count]) => `${count} × ${key}`).join(', ') || 'none'
  return `first attempts that failed over: ${list(causes)}; nginx upstream errors: ${list(kinds)}`
}

t.test('nginx in front of three service nodes on one database', { skip: nginxBin === undefined ? NGINX_MISSING : false }, async (t) => {
  await ensureBuilt(t)
  // Migrated once before the nodes start, like compose's one-shot migrate service; the nodes run with MIGRATE=false.
  const { url, sql } = await freshDatabase(t)
  await sql.end({ timeout: 5 })

  const ports: number[] = []
  while (ports.length < 3) {
    const port = await freePort()
    if (!ports.includes(port)) ports.push(port)
  }
  const addrs = ports.map((port) => `127.0.0.1:${port}`)
  // What X-Upstream calls them: deploy/nginx.conf maps each node's address to its compose service name.
  const names = ['session-1', 'session-2', 'session-3']
  const env = { HOST: '127.0.0.1', DATABASE_URL: url, MIGRATE: 'false', API_KEYS: `app:${APP_KEY},nginx:${NGINX_KEY}`, LOG_LEVEL: 'warn', DATABASE_POOL_MAX: '5' }
  const startNode = async (port: number): Promise<Service> => {
    const service = startService(t, { ...env, PORT: String(port) }, { port })
    // Generous: on a busy machine three nodes starting at once can take more than the default 15 s.
    await service.waitUntilServing(60_000)
    return service
  }
  const nodes = await Promise.all(ports.map(startNode))

  // The example app behind auth_request: records what nginx forwarded.
  const appRequests: http.IncomingHttpHeaders[] = []
  const app = http.createServer((req, res) => {
    appRequests.push(req.headers)
    res.setHeader('set-cookie', APP_SET_COOKIES)
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ url: req.url }))
  })
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    app.closeAllConnections()
    app.close(() => resolve())
  }))

  const lbPort = await freePort()
  const nginx = await startNginx(t, nginxBin!, renderNginxConf({
    NGINX_LISTEN: `127.0.0.1:${lbPort}`,
    SESSION_UPSTREAM_1: addrs[0],
    SESSION_UPSTREAM_2: addrs[1],
    SESSION_UPSTREAM_3: addrs[2],
    APP_UPSTREAM: `127.0.0.1:${(app.address() as AddressInfo).port}`,
    NGINX_AUTH_API_KEY: NGINX_KEY,
  }), lbPort)
  const lb = `http://127.0.0.1:${lbPort}`

  const create = async (userId: string): Promise<{ token: string; id: string }> => {
    const reply = await send(lb, 'POST', '/v1/sessions', { body: { userId } })
    if (reply.status !== 201) throw new Error(`create through nginx answered ${reply.status}: ${JSON.stringify(reply.body)}`)
    return { token: reply.body.token, id: reply.body.session.id }
  }
  const validate = (base: string, token: string) => send(base, 'POST', '/v1/sessions/validate', { body: { token } })

  // Validations of the given tokens by `concurrency` loops until `during` is done; during() sees the replies so far.
  // One more loop logs in (creates) meanwhile: nginx never replays a create, so those are reported, not required to pass.
  const stream = async (tokens: string[], concurrency: number, during: (replies: Reply[]) => Promise<void>, base = lb): Promise<{ replies: Reply[]; creates: Reply[] }> => {
    const replies: Reply[] = []
    const creates: Reply[] = []
    let running = true
    const loops = Array.from({ length: concurrency }, async (_, loop) => {
      for (let n = loop; running; n++) replies.push(await validate(base, tokens[n % tokens.length]))
    })
    const logins = (async () => {
      for (let n = 0; running; n++) {
        creates.push(await send(base, 'POST', '/v1/sessions', { body: { userId: `login-${n}` } }))
        await sleep(10)
      }
    })()
    try {
      await during(replies)
    } finally {
      running = false
      await Promise.all([...loops, logins])
    }
    return { replies, creates }
  }

  // Logins that failed otherwise than with the contract's retryable 503 unavailable, and a summary line.
  const logins = (creates: Reply[]): { unexpected: unknown[]; text: string } => {
    const failed = creates.filter((reply) => reply.status !== 201)
    const unexpected = failed.filter((reply) => reply.status !== 503 || reply.body?.error?.code !== 'unavailable')
      .map(({ status, upstream, body, error }) => ({ status, upstream, body, error }))
    const why = failed.map((reply) => `${reply.upstream || 'no node'}: ${reply.body?.error?.message ?? reply.error}`)
    return { unexpected, text: `${creates.length} logins alongside, ${creates.length - failed.length} created, ${failed.length} answered 503 unavailable${why.length > 0 ? ` (${why.join('; ')})` : ''}` }
  }

  // Resolves once nginx has routed a validation of the stream to `addr` (started after `since`) and it answered 200.
  const backInRotation = async (replies: Reply[], name: string, since: number, timeoutMs = 10_000): Promise<number> => {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const hit = replies.find((reply) => reply.at >= since && reply.node === name && reply.status === 200)
      if (hit !== undefined) return hit.at + hit.ms
      if (performance.now() > deadline) throw new Error(`nginx sent no request to ${name} within ${timeoutMs} ms`)
      await sleep(20)
    }
  }

  // The part of nginx's logs written since mark() was called.
  const logMark = () => {
    const access = nginx.accessLog().length
    const errors = nginx.errorLog().length
    return () => retrySummary(nginx.accessLog().slice(access), nginx.errorLog().slice(errors))
  }

  const explain = (t: { comment(...args: unknown[]): void }, failed: Reply[]) => {
    if (failed.length === 0) return
    t.comment(`first failures: ${JSON.stringify(failed.slice(0, 5).map(({ status, upstream, error, body }) => ({ status, upstream, error, body })))}`)
    t.comment(`nginx error log (tail): ${nginx.errorLog().slice(-3000)}`)
  }

  await t.test('a session created through one request validates on every node (round-robin, no stickiness)', async (t) => {
    const { token } = await create('rr-user')
    const replies: Reply[] = []
    for (let i = 0; i < 12; i++) replies.push(await validate(lb, token))
    t.same(replies.map((reply) => reply.status), Array(12).fill(200), 'every validation answers 200')
    const perNode = names.map((name) => replies.filter((reply) => reply.node === name).length)
    t.ok(perNode.every((count) => count > 0), `all three nodes answered (${perNode.join(' / ')})`)
    t.same([...new Set(replies.map((reply) => reply.upstream))].sort(), names, 'X-Upstream names the node that answered: session-1, session-2, session-3')
    t.comment(`round-robin: 12 validations of one session, ${replies.filter((r) => r.status !== 200).length} failed, answered by the three nodes ${perNode.join(' / ')} times`)
  })

  await t.test('logout through any node ends the session on every node for the very next request', async (t) => {
    let requests = 0
    let stillValid = 0
    let crossNode = 0
    const badLogouts: unknown[] = []
    const revokedBy = new Set<string>()
    for (let i = 0; i < 30; i++) {
      const { token } = await create(`logout-${i}`)
      const revoked = await send(lb, 'POST', '/v1/sessions/revoke', { body: { token } })
      requests += 2
      revokedBy.add(revoked.node)
      const [cleared] = parseSetCookie(revoked.setCookie)
      if (revoked.status !== 204 || cleared?.name !== 'sid' || cleared.value !== '' || cleared.maxAge !== 0 || cleared.path !== '/' || cleared.httpOnly !== true) {
        badLogouts.push({ status: revoked.status, setCookie: revoked.setCookie })
      }
      // The very next requests, through nginx (round-robin moves on to the other nodes) and straight to each node.
      const viaNginx = [await validate(lb, token), await validate(lb, token)]
      const direct = await Promise.all(addrs.map(async (addr, i) => ({ ...(await validate(`http://${addr}`, token)), node: names[i] })))
      const next = [...viaNginx, ...direct]
      requests += next.length
      for (const reply of next) {
        if (reply.status !== 401 || reply.body?.error?.reason !== 'revoked' || reply.body?.error?.revokeReason !== 'logout') stillValid++
      }
      crossNode += next.filter((reply) => reply.node !== revoked.node).length
    }
    t.same(badLogouts, [], 'every logout answers 204 with the clearing Set-Cookie, passed through nginx untouched')
    t.equal(stillValid, 0, 'no validation after the logout response succeeds, on any node')
    t.equal(revokedBy.size, 3, 'logouts were answered by all three nodes')
    t.comment(`logout: 30 logouts, ${requests} requests, ${stillValid} of ${30 * 5} validations right after a logout succeeded (${crossNode} of them on another node than the logout), logouts answered by ${revokedBy.size} nodes`)
  })

  await t.test('kill -9 of one node under a steady stream: no session lost, nobody logged out, the stream recovers', async (t) => {
    const sessions = await Promise.all(Array.from({ length: 20 }, (_, i) => create(`kill-${i}`)))
    const tokens = sessions.map((session) => session.token)
    const victim = 1
    let killedAt = 0
    const logs = logMark()
    const { replies, creates } = await stream(tokens, 4, async () => {
      await sleep(800)
      killedAt = performance.now()
      nodes[victim].child.kill('SIGKILL')
      await nodes[victim].exited
      await sleep(2_200)
    })
    const nginxSaw = logs()
    const { failed, text } = failures(replies)
    const after = replies.filter((reply) => reply.at >= killedAt)
    const retried = after.filter((reply) => reply.upstream.includes(','))
    const triedDead = after.filter((reply) => reply.upstream.split(', ').includes(names[victim]))
    const lastDeadTry = triedDead.length === 0 ? 0 : Math.round(Math.max(...triedDead.map((reply) => reply.at)) - killedAt)
    // nginx marks the node down (max_fails=1) on the first attempt that fails: by the time that request is answered.
    const markedDownAt = triedDead.length === 0 ? killedAt : Math.min(...triedDead.map((reply) => reply.at + reply.ms))
    const recovery = failed.length === 0 ? 0 : Math.round(Math.max(...failed.map((reply) => reply.at + reply.ms)) - killedAt)
    explain(t, failed)
    t.ok(replies.length > 50, `a steady stream (${replies.length} validations)`)
    t.equal(failed.filter((reply) => reply.status === 401).length, 0, 'no validation answered 401: nobody was logged out')
    const recovered = after.filter((reply) => reply.at > markedDownAt)
    t.same(recovered.filter((reply) => reply.status !== 200).length, 0,
      `every validation after nginx marked the node down (${Math.round(markedDownAt - killedAt)} ms after the kill) succeeds`)
    t.ok(recovered.length > 20, `and there were many of them (${recovered.length})`)
    const survivors = names.filter((_, i) => i !== victim)
    t.ok(survivors.every((name) => after.some((reply) => reply.node === name && reply.status === 200)), 'both survivors kept answering')
    const check = await Promise.all(tokens.map((token) => validate(lb, token)))
    t.same(check.map((reply) => reply.status), Array(tokens.length).fill(200), 'every session still validates: none was lost')
    t.comment(`kill -9: ${replies.length} validations (${after.length} after the kill), ${text}, ${retried.length} retried on another node by nginx, ` +
      `marked down ${Math.round(markedDownAt - killedAt)} ms and last tried ${lastDeadTry} ms after the kill, recovery ${recovery} ms, latency p50 ${percentile(after.map((r) => r.ms), 50)} ms / max ${percentile(after.map((r) => r.ms), 100)} ms`)
    const loginResults = logins(creates)
    t.same(loginResults.unexpected, [], 'a login that fails is a 503 unavailable, which the client may retry')
    t.comment(`kill -9: ${loginResults.text}; ${nginxSaw}`)
    nodes[victim] = await startNode(ports[victim])
  })

  await t.test('rolling restart (SIGTERM each node, start it again) under a steady stream: zero failed validations', async (t) => {
    const sessions = await Promise.all(Array.from({ length: 20 }, (_, i) => create(`rolling-${i}`)))
    const tokens = sessions.map((session) => session.token)
    const exits: Array<Exit | undefined> = []
    const steps: string[] = []
    const started = performance.now()
    const logs = logMark()
    const { replies, creates } = await stream(tokens, 4, async (replies) => {
      // A node restarted in the previous scenario may still be marked down: start with all three in rotation.
      for (const name of names) await backInRotation(replies, name, started)
      for (let i = 0; i < nodes.length; i++) {
        const stoppedAt = performance.now()
        nodes[i].child.kill('SIGTERM')
        exits.push(await nodes[i].waitForExit(15_000))
        const exitedAt = performance.now()
        nodes[i] = await startNode(ports[i])
        const servingAt = performance.now()
        // The rule for a rolling restart behind passive health checks: stop the next node only once nginx sends
        // traffic to this one again (at most fail_timeout after it went down).
        const rotationAt = await backInRotation(replies, names[i], servingAt)
        steps.push(`node ${i + 1}: exit ${Math.round(exitedAt - stoppedAt)} ms, serving ${Math.round(servingAt - stoppedAt)} ms, back in rotation ${Math.round(rotationAt - stoppedAt)} ms`)
      }
      await sleep(300)
    })
    const { failed, text } = failures(replies)
    explain(t, failed)
    t.same(exits.map((exit) => exit?.code), [0, 0, 0], 'each node exits 0 after SIGTERM')
    t.ok(replies.length > 100, `a steady stream (${replies.length} validations)`)
    t.equal(failed.length, 0, 'every validation answered 200')
    const retried = replies.filter((reply) => reply.upstream.includes(','))
    t.comment(`rolling restart: ${replies.length} validations in ${Math.round(performance.now() - started)} ms, ${text}, ${retried.length} retried on another node by nginx; ${steps.join('; ')}`)
    const loginResults = logins(creates)
    t.same(loginResults.unexpected, [], 'a login that fails is a 503 unavailable, which the client may retry')
    t.comment(`rolling restart: ${loginResults.text}; ${logs()}`)
  })

  await t.test('nginx starts and serves while a node\'s address drops packets, and that node costs at most the connect timeout', async (t) => {
    // Compose gives nginx the nodes' fixed addresses, never their names (deploy/nginx.conf): a stopped node is then an
    // address that drops packets, not a name that does not resolve, and nginx must start and serve regardless.
    const dead = await droppingAddress(t)
    const probe = await connectOutcome(Number(dead.split(':')[1]), 1_000)
    probe.socket.destroy()
    t.equal(probe.outcome, 'timeout', 'a connection to session-2\'s address is neither accepted nor refused: its SYN is dropped')
    const port = await freePort()
    const started = performance.now()
    const down = await startNginx(t, nginxBin!, renderNginxConf({
      NGINX_LISTEN: `127.0.0.1:${port}`,
      SESSION_UPSTREAM_1: addrs[0],
      SESSION_UPSTREAM_2: dead,
      SESSION_UPSTREAM_3: addrs[2],
      APP_UPSTREAM: `127.0.0.1:${(app.address() as AddressInfo).port}`,
      NGINX_AUTH_API_KEY: NGINX_KEY,
    }), port)
    const base = `http://127.0.0.1:${port}`
    t.pass(`nginx started with session-2 down, listening after ${Math.round(performance.now() - started)} ms`)

    const sessions = await Promise.all(Array.from({ length: 20 }, (_, i) => create(`outage-${i}`)))
    const tokens = sessions.map((session) => session.token)
    // Over 7 s, nginx probes the dead node about every fail_timeout (3 s): two or three requests meet it.
    const { replies, creates } = await stream(tokens, 4, async () => { await sleep(7_000) }, base)
    const { failed, text } = failures(replies)
    explain(t, failed)
    t.ok(replies.length > 50, `a steady stream (${replies.length} validations)`)
    t.equal(failed.length, 0, 'every validation answered 200')
    const metDead = replies.filter((reply) => reply.upstream.split(', ').includes('session-2'))
    t.ok(metDead.length >= 1, `nginx tried the dead node (${metDead.length} times) and passed the request on`)
    t.ok(metDead.every((reply) => reply.status === 200 && reply.node !== 'session-2'), 'each of those was answered by another node')
    const slowest = percentile(replies.map((reply) => reply.ms), 100)
    const p99 = percentile(replies.map((reply) => reply.ms), 99)
    // proxy_connect_timeout is 300 ms: a request that meets the dead node waits that long, then goes on. Before, 2 s.
    t.ok(Math.max(...metDead.map((reply) => reply.ms)) < 1_000, `a request that met the dead node took at most ${Math.round(Math.max(...metDead.map((reply) => reply.ms)))} ms`)
    t.ok(p99 < 1_000, `p99 ${p99} ms`)
    const createFailures = creates.filter((reply) => reply.status !== 201)
    t.same(createFailures.map(({ status, upstream }) => ({ status, upstream })), [], 'every login succeeded: a connect timeout means no node received it, so nginx passed it on')
    const retried = down.accessLog().split('\n').filter((line) => /upstream=\S+, /.test(line)).length
    t.comment(`node outage (session-2 drops packets): ${replies.length} validations in 7 s, ${text}, latency p50 ${percentile(replies.map((r) => r.ms), 50)} ms / ` +
      `p99 ${p99} ms / max ${slowest} ms; ${metDead.length} met the dead node (${metDead.map((reply) => Math.round(reply.ms)).join(', ')} ms); ` +
      `${creates.length} logins, ${createFailures.length} failed; nginx passed ${retried} requests on`)
  })

  await t.test('auth_request: a valid cookie reaches the app with X-User-Id; no cookie or a revoked one is a 401', async (t) => {
    const userId = 'Zoë Ünïcode/42'
    const { token, id } = await create(userId)
    const before = appRequests.length
    const cookie = `theme=dark; sid=${token}`
    // A client's own X-User-Id must never reach the app.
    const ok = await send(lb, 'GET', '/app/hello?x=1', { key: false, headers: { cookie, 'x-user-id': 'admin' } })
    t.equal(ok.status, 200, 'a valid session cookie passes')
    t.equal(appRequests.length, before + 1, 'the app got the request')
    const seen = appRequests.at(-1)!
    t.equal(seen['x-user-id'], encodeURIComponent(userId), 'X-User-Id is the session user, percent-encoded')
    t.equal(seen['x-session-id'], id, 'X-Session-Id is the session id')
    t.equal(seen.cookie, cookie, 'the Cookie header reaches the app untouched')
    t.equal(seen.authorization, undefined, "nginx's API key never reaches the app")
    t.same(ok.setCookie, APP_SET_COOKIES, "the app's Set-Cookie headers reach the client untouched")

    const none = await send(lb, 'GET', '/app/hello', { key: false })
    t.equal(none.status, 401, 'no cookie: 401')
    const garbage = await send(lb, 'GET', '/app/hello', { key: false, headers: { cookie: 'sid=not-a-token' } })
    t.equal(garbage.status, 401, 'an unknown token: 401')
    t.equal((await send(lb, 'POST', '/v1/sessions/revoke', { body: { token } })).status, 204, 'logout')
    const revoked = await send(lb, 'GET', '/app/hello', { key: false, headers: { cookie } })
    t.equal(revoked.status, 401, 'a revoked session: 401')
    t.equal(appRequests.length, before + 1, 'the app never saw the refused requests')
    t.comment(`auth_request: 4 requests through nginx, 1 passed to the app (X-User-Id ${seen['x-user-id']}), 3 refused with 401 (no cookie, unknown, revoked)`)
  })
})
