// Slow and idle clients are bounded on real sockets: headers, a whole request, an idle kept-alive socket, and the number of
// sockets at once, each closed within its configured bound plus about a second (small bounds here so the test runs fast).
import net from 'node:net'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { APP_KEY, BASE_ENV, buildNode } from '../helpers/app.js'
import { freshDatabase } from '../helpers/db.js'

const HEADERS_MS = 1000
const REQUEST_MS = 2000
const KEEP_ALIVE_MS = 1000
// Node checks the bounds about every quarter of the headers bound here; the rest is a busy machine's slack.
const MARGIN_MS = 1200
const TRICKLE_MS = 200

async function listening(t: Test, env: Record<string, string> = {}): Promise<number> {
  const { url, sql } = await freshDatabase(t)
  await sql.end()
  const { app } = await buildNode(t, url, {
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
    HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS),
    ...env,
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as net.AddressInfo).port
}

interface Closed { afterMs: number; received: string }

// Opens a socket, feeds it `chunks` one every TRICKLE_MS for as long as it stays open, and reports when the server closed it.
function trickle(port: number, chunks: string[], opts: { hold?: boolean } = {}): Promise<Closed> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    // From the connection, which is when the server's clock for it starts.
    let startedAt = performance.now()
    let received = ''
    let timer: NodeJS.Timeout | undefined
    let next = 0
    socket.on('connect', () => {
      startedAt = performance.now()
      const feed = () => {
        if (socket.destroyed || socket.writableEnded) return
        if (next < chunks.length) socket.write(chunks[next++])
        else if (!opts.hold) return
        timer = setTimeout(feed, TRICKLE_MS)
      }
      feed()
    })
    socket.on('data', (data) => { received += data.toString() })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ afterMs: performance.now() - startedAt, received })
    })
    setTimeout(() => {
      socket.destroy()
      reject(new Error('the server did not close the socket within 15 s'))
    }, 15_000).unref()
  })
}

const oneByteAtATime = (text: string) => [...text]

t.test('headers trickled a byte at a time are cut off at HTTP_HEADERS_TIMEOUT_MS with 408', async (t) => {
  const port = await listening(t)
  const headers = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(200)}\r\n\r\n`
  const closed = await trickle(port, oneByteAtATime(headers))
  t.ok(closed.afterMs >= HEADERS_MS - 100 && closed.afterMs < HEADERS_MS + MARGIN_MS, `closed after ${Math.round(closed.afterMs)} ms (bound ${HEADERS_MS} ms)`)
  t.match(closed.received, /^HTTP\/1\.1 408 /)
})

t.test('a body trickled a byte at a time is cut off at HTTP_REQUEST_TIMEOUT_MS with 408', async (t) => {
  const port = await listening(t)
  const body = JSON.stringify({ token: 'x'.repeat(300) })
  const head = `POST /v1/sessions/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${APP_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`
  const closed = await trickle(port, [head, ...oneByteAtATime(body)])
  t.ok(closed.afterMs >= REQUEST_MS - 100 && closed.afterMs < REQUEST_MS + MARGIN_MS, `closed after ${Math.round(closed.afterMs)} ms (bound ${REQUEST_MS} ms)`)
  t.match(closed.received, /^HTTP\/1\.1 408 /)
})

t.test('a socket that sends nothing is closed at HTTP_HEADERS_TIMEOUT_MS', async (t) => {
  const port = await listening(t)
  const closed = await trickle(port, [])
  t.ok(closed.afterMs < HEADERS_MS + MARGIN_MS, `closed after ${Math.round(closed.afterMs)} ms (bound ${HEADERS_MS} ms)`)
})

// Node keeps an idle socket 1 s past the Keep-Alive timeout it advertises, so that a client never reuses one being closed.
t.test('an idle kept-alive socket is closed 1 s after HTTP_KEEP_ALIVE_TIMEOUT_MS', async (t) => {
  const port = await listening(t)
  const closed = await trickle(port, ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.match(closed.received, /^HTTP\/1\.1 200 /)
  t.match(closed.received, /\r\nKeep-Alive: timeout=1\r\n/i, 'the advertised timeout')
  const bound = KEEP_ALIVE_MS + 1000
  t.ok(closed.afterMs >= bound - 100 && closed.afterMs < bound + MARGIN_MS, `closed after ${Math.round(closed.afterMs)} ms (bound ${bound} ms)`)
})

t.test('500 sockets trickling headers at once: each is closed within the bound, and the node keeps answering', async (t) => {
  const port = await listening(t)
  const headers = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(200)}\r\n\r\n`
  const slow = Array.from({ length: 500 }, () => trickle(port, oneByteAtATime(headers)))
  await new Promise((resolve) => setTimeout(resolve, HEADERS_MS / 2))
  const startedAt = performance.now()
  const res = await fetch(`http://127.0.0.1:${port}/healthz`)
  t.equal(res.status, 200, `a request among them answered in ${Math.round(performance.now() - startedAt)} ms`)
  const closed = await Promise.all(slow)
  const slowest = Math.max(...closed.map((c) => c.afterMs))
  // One process plays both the 500 clients and the server here, so the crowd gets a wider margin than a single socket.
  t.ok(slowest < HEADERS_MS + MARGIN_MS * 3, `the last of them closed after ${Math.round(slowest)} ms (bound ${HEADERS_MS} ms)`)
  t.equal(closed.filter((c) => /^HTTP\/1\.1 408 /.test(c.received)).length, 500, 'each got 408')
})

t.test('past HTTP_MAX_CONNECTIONS a new socket is closed at once; the open ones still work', async (t) => {
  const port = await listening(t, { HTTP_MAX_CONNECTIONS: '3' })
  const held = await Promise.all([0, 1, 2].map(() => new Promise<net.Socket>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket))
    socket.on('error', () => {})
  })))
  t.teardown(() => { for (const socket of held) socket.destroy() })
  // Give the server a moment to register the three before the fourth arrives.
  await new Promise((resolve) => setTimeout(resolve, 100))
  const extra = await trickle(port, ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'])
  t.equal(extra.received, '', 'the fourth socket got no answer')
  t.ok(extra.afterMs < 500, `and was closed after ${Math.round(extra.afterMs)} ms`)
  const answer = await new Promise<string>((resolve) => {
    let received = ''
    held[0].on('data', (data) => {
      received += data.toString()
      if (received.includes('\r\n\r\n')) resolve(received)
    })
    held[0].write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  })
  t.match(answer, /^HTTP\/1\.1 200 /)
})

t.test('the bounds are configuration: defaults, and a headers bound longer than the request bound is refused', async (t) => {
  const config = loadConfig(BASE_ENV)
  t.same(config.http, { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 72_000, maxConnections: 10_000 })
  t.throws(() => loadConfig({ ...BASE_ENV, HTTP_HEADERS_TIMEOUT_MS: '40000' }), /HTTP_HEADERS_TIMEOUT_MS must not be longer than HTTP_REQUEST_TIMEOUT_MS/)
  t.throws(() => loadConfig({ ...BASE_ENV, HTTP_MAX_CONNECTIONS: '0' }), /HTTP_MAX_CONNECTIONS must be between 1/)
})
