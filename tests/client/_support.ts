// The real service listening on loopback, and a programmable loopback proxy in front of it that can answer 503/410, hang, hold or reset.
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { setup, type TestApp } from '../helpers/app.js'

type Tap = { teardown(fn: () => unknown): void }

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// Polls until check() is true or timeoutMs passes; answers the last check.
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await sleep(everyMs)
  }
  return check()
}

export interface ListeningService extends TestApp {
  base: string
  connections: () => number
}

// A fresh database and buildServer listening on 127.0.0.1:0; setup's teardown closes it.
export async function listeningService(t: Tap, env: Record<string, string> = {}): Promise<ListeningService> {
  const ctx = await setup(t, env)
  let connections = 0
  let closing = false
  // Sockets that have not carried a request yet. Node's closeIdleConnections() leaves them open, so app.close() would wait
  // for the 30 s connection timeout; an aborted fetch can leave one behind (undici reconnects for a request gone since).
  const unused = new Set<Socket>()
  const dropIfUnused = (socket: Socket) => {
    if (unused.has(socket)) socket.destroy()
  }
  ctx.app.server.on('connection', (socket: Socket) => {
    connections++
    unused.add(socket)
    socket.once('close', () => unused.delete(socket))
    if (closing) setTimeout(() => dropIfUnused(socket), 200).unref()
  })
  ctx.app.server.on('request', (req: http.IncomingMessage) => unused.delete(req.socket))
  // Runs before setup's own teardown (tap runs them last-in first-out), which closes the app.
  t.teardown(() => {
    closing = true
    for (const socket of unused) socket.destroy()
  })
  await ctx.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = ctx.app.server.address() as AddressInfo
  return { ...ctx, base: `http://127.0.0.1:${port}`, connections: () => connections }
}

export interface Seen {
  method: string
  path: string
  query: URLSearchParams
}

// What the proxy does with one request: answer it itself, hang, reset the connection (before or after the service ran it),
// or forward it and hold the service's answer until release() is called.
export type Interception =
  | { status: number; body: unknown; headers?: Record<string, string> }
  | { action: 'hang' }
  | { action: 'reset-before' }
  | { action: 'reset-after' }
  | { action: 'hold'; released: Promise<void>; onHeld?: () => void }

export type Interceptor = (seen: Seen) => Interception | undefined

export interface Proxy {
  base: string
  port: number
  seen: Seen[]
  count(method: string, path: string): number
  intercept(fn: Interceptor | undefined): void
  listen(): Promise<void>
  close(): Promise<void>
}

export const unavailableBody = { error: { code: 'unavailable', message: 'the database cannot be reached; retry shortly', details: [] } }

// Creates the proxy; it listens at once unless { listen: false } (then on `port`, when listen() is called).
export async function startProxy(t: Tap, target: string, options: { port?: number; listen?: boolean } = {}): Promise<Proxy> {
  const seen: Seen[] = []
  const sockets = new Set<Socket>()
  let interceptor: Interceptor | undefined
  const targetUrl = new URL(target)

  const forward = (req: http.IncomingMessage, body: Buffer, onAnswer: (status: number, headers: http.IncomingHttpHeaders, data: Buffer) => void, onError: () => void) => {
    const upstream = http.request({
      host: targetUrl.hostname,
      port: targetUrl.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: targetUrl.host, connection: 'close' },
      agent: false,
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => onAnswer(res.statusCode ?? 502, res.headers, Buffer.concat(chunks)))
      res.on('error', onError)
    })
    upstream.on('error', onError)
    upstream.end(body)
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://proxy')
      const entry = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams }
      seen.push(entry)
      const plan = interceptor?.(entry)
      const send = (status: number, headers: http.IncomingHttpHeaders, data: Buffer) => {
        if (res.destroyed) return
        const { connection: _c, 'keep-alive': _k, 'transfer-encoding': _te, ...rest } = headers
        res.writeHead(status, { ...rest, 'content-length': String(data.length) })
        res.end(data)
      }
      const fail = () => res.destroy()
      if (plan === undefined) return forward(req, Buffer.concat(chunks), send, fail)
      if ('status' in plan) {
        const data = Buffer.from(JSON.stringify(plan.body))
        return send(plan.status, { 'content-type': 'application/json; charset=utf-8', ...plan.headers }, data)
      }
      if (plan.action === 'hang') return
      if (plan.action === 'reset-before') return req.socket.destroy()
      if (plan.action === 'reset-after') return forward(req, Buffer.concat(chunks), () => req.socket.destroy(), fail)
      forward(req, Buffer.concat(chunks), (status, headers, data) => {
        plan.onHeld?.()
        void plan.released.then(() => send(status, headers, data))
      }, fail)
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  let port = options.port ?? 0
  const listen = () => new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      port = (server.address() as AddressInfo).port
      resolve()
    })
  })
  const close = () => new Promise<void>((resolve) => {
    if (!server.listening) return resolve()
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  })
  if (options.listen !== false) await listen()
  t.teardown(close)

  return {
    get base() {
      return `http://127.0.0.1:${port}`
    },
    get port() {
      return port
    },
    seen,
    count: (method, path) => seen.filter((s) => s.method === method && s.path === path).length,
    intercept(fn) {
      interceptor = fn
    },
    listen,
    close,
  }
}

// An interceptor that answers the first `times` matching requests with `answer`, then forwards.
export function firstN(times: number, matches: (seen: Seen) => boolean, answer: Interception): Interceptor {
  let left = times
  return (seen) => {
    if (left > 0 && matches(seen)) {
      left--
      return answer
    }
    return undefined
  }
}
