// Every way the database can refuse or drop a connection answers 503 unavailable with Retry-After, never 500: against the
// real server where it can refuse (maintenance, missing database, unknown role, connection limits), and against a socket
// that speaks just enough of the protocol for the refusals a trust-auth server cannot give (wrong password, starting up).
import net from 'node:net'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { connect } from '../../src/db.js'
import { loggerOptions } from '../../src/logger.js'
import { buildServer } from '../../src/server.js'
import { newToken } from '../../src/sessions/tokens.js'
import { BASE_ENV, call } from '../helpers/app.js'
import { databaseUrl, freshDatabase, serverUrl } from '../helpers/db.js'
import { freePort } from '../support/process.js'

interface Probe {
  app: FastifyInstance
  // The `code` of each "unavailable" warning logged so far: which refusal the driver reported.
  codes(): string[]
}

async function appOn(t: Test, url: string, env: Record<string, string> = {}): Promise<Probe> {
  const config = loadConfig({ ...BASE_ENV, LOG_LEVEL: 'warn', DATABASE_CONNECT_TIMEOUT: '2', ...env, DATABASE_URL: url })
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const app = await buildServer({ config, sql: connect(url, config), cron: false, loggerInstance: pino(loggerOptions(config) as pino.LoggerOptions, stream) })
  await app.ready()
  t.teardown(() => app.close())
  return { app, codes: () => lines.filter((line) => typeof line.code === 'string' && line.level === 40).map((line) => line.code as string) }
}

// A create and a validate (a well-formed token, so it reaches the database) are both 503 unavailable with Retry-After.
async function assertUnavailable(t: Test, probe: Probe, expectedCode: string | RegExp): Promise<void> {
  const responses = [
    await call(probe.app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'u1' } }),
    await call(probe.app, { method: 'POST', url: '/v1/sessions/validate', payload: { token: newToken() } }),
  ]
  for (const res of responses) {
    t.equal(res.statusCode, 503, `503 (got ${res.statusCode} ${res.body.slice(0, 160)})`)
    t.equal(res.headers['retry-after'], '2')
    t.match(res.json(), { error: { code: 'unavailable', details: [] } })
  }
  const codes = probe.codes()
  const matches = (code: string) => (typeof expectedCode === 'string' ? code === expectedCode : expectedCode.test(code))
  t.ok(codes.length >= 2 && codes.every(matches), `the driver reported ${String(expectedCode)} (logged: ${codes.join(', ')})`)
}

async function onServer<T>(fn: (admin: postgres.Sql) => Promise<T>): Promise<T> {
  const admin = postgres(serverUrl(), { max: 1, onnotice: () => {} })
  try {
    return await fn(admin)
  } finally {
    await admin.end()
  }
}

// The test roles' password: ignored by a server that trusts loopback, needed by one that asks (the embedded database).
const ROLE_PASSWORD = 'refused-connections-test'

// A role that may log in but is not a superuser (superusers are exempt from connection limits), dropped at the end.
async function loginRole(t: Test, name: string, options: string): Promise<string> {
  await onServer((admin) => admin.unsafe(`create role ${name} login password '${ROLE_PASSWORD}' ${options}`))
  t.teardown(() => onServer(async (admin) => {
    await admin.unsafe(`select pg_terminate_backend(pid) from pg_stat_activity where usename = '${name}'`)
    await admin.unsafe(`drop role if exists ${name}`)
  }))
  return name
}

function withUser(url: string, user: string): string {
  const parsed = new URL(url)
  parsed.username = user
  parsed.password = ROLE_PASSWORD
  return parsed.toString()
}

const suffix = () => Math.random().toString(16).slice(2, 10)

t.test('a database closed to connections (ALLOW_CONNECTIONS false, 55000) while the service runs', async (t) => {
  const { name, url, sql } = await freshDatabase(t)
  await sql.end()
  const probe = await appOn(t, url)
  t.equal((await call(probe.app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'u1' } })).statusCode, 201, 'served before')
  await onServer(async (admin) => {
    await admin.unsafe(`alter database ${name} allow_connections false`)
    await admin.unsafe(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}' and pid <> pg_backend_pid()`)
  })
  // The first request may meet the terminated connection (57P01 or a closed socket); the ones after it must reconnect.
  await call(probe.app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'u1' } })
  await assertUnavailable(t, probe, /^(55000|57P01|CONNECTION_CLOSED)$/)
  t.ok(probe.codes().includes('55000'), `a reconnect was refused with 55000 (logged: ${probe.codes().join(', ')})`)
  await onServer((admin) => admin.unsafe(`alter database ${name} allow_connections true`))
  // Reconnect attempts back off to at most 0.5 s: the service is back within seconds, not at the first request.
  const reopened = performance.now()
  let status = 0
  while (status !== 201 && performance.now() - reopened < 5000) {
    status = (await call(probe.app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'u1' } })).statusCode
    if (status !== 201) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(status, 201, `served again within 5 s once it reopens (after ${Math.round(performance.now() - reopened)} ms)`)
})

t.test('a database that does not exist (3D000)', async (t) => {
  await assertUnavailable(t, await appOn(t, databaseUrl(`missing_${suffix()}`)), '3D000')
})

t.test('a role that does not exist (28000; 28P01 where the server asks for a password)', async (t) => {
  const { url, sql } = await freshDatabase(t)
  await sql.end()
  // A server that asks for a password answers an unknown role as a wrong password, so as not to tell which roles exist.
  await assertUnavailable(t, await appOn(t, withUser(url, `nobody_${suffix()}`)), /^28(000|P01)$/)
})

t.test('a role at its connection limit (CONNECTION LIMIT 0, 53300)', async (t) => {
  const { url, sql } = await freshDatabase(t)
  await sql.end()
  const role = await loginRole(t, `limited_${suffix()}`, 'connection limit 0')
  await assertUnavailable(t, await appOn(t, withUser(url, role)), '53300')
})

t.test('a database at its connection limit (CONNECTION LIMIT 0, 53300)', async (t) => {
  const { name, url, sql } = await freshDatabase(t)
  await sql.end()
  const role = await loginRole(t, `plain_${suffix()}`, '')
  await onServer((admin) => admin.unsafe(`alter database ${name} connection limit 0`))
  await assertUnavailable(t, await appOn(t, withUser(url, role)), '53300')
})

// A server that answers the startup message with one FATAL error, as Postgres does for a wrong password or while starting.
async function refusingServer(t: Test, code: string, message: string): Promise<string> {
  const server = net.createServer((socket) => {
    socket.once('data', () => {
      const fields = Buffer.concat([
        ...[['S', 'FATAL'], ['V', 'FATAL'], ['C', code], ['M', message]].map(([k, v]) => Buffer.from(`${k}${v}\0`)),
        Buffer.from([0]),
      ])
      const header = Buffer.alloc(5)
      header.write('E', 0)
      header.writeInt32BE(fields.length + 4, 1)
      socket.end(Buffer.concat([header, fields]))
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `postgres://postgres@127.0.0.1:${(server.address() as net.AddressInfo).port}/db`
}

t.test('a wrong password (28P01)', async (t) => {
  const url = await refusingServer(t, '28P01', 'password authentication failed for user "postgres"')
  await assertUnavailable(t, await appOn(t, url), '28P01')
})

t.test('a server starting up (57P03)', async (t) => {
  const url = await refusingServer(t, '57P03', 'the database system is starting up')
  await assertUnavailable(t, await appOn(t, url), '57P03')
})

t.test('any other FATAL refusal at connect (here 42501, no CONNECT privilege)', async (t) => {
  const { name, url, sql } = await freshDatabase(t)
  await sql.end()
  const role = await loginRole(t, `noconnect_${suffix()}`, '')
  await onServer((admin) => admin.unsafe(`revoke connect on database ${name} from public`))
  await assertUnavailable(t, await appOn(t, withUser(url, role)), '42501')
})

t.test('nothing listening (ECONNREFUSED)', async (t) => {
  const port = await freePort()
  await assertUnavailable(t, await appOn(t, `postgres://postgres@127.0.0.1:${port}/db`), 'ECONNREFUSED')
})

t.test('a server that never answers (CONNECT_TIMEOUT)', async (t) => {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const url = `postgres://postgres@127.0.0.1:${(server.address() as net.AddressInfo).port}/db`
  await assertUnavailable(t, await appOn(t, url, { DATABASE_CONNECT_TIMEOUT: '1' }), 'CONNECT_TIMEOUT')
})

t.test('a server that resets the connection (ECONNRESET)', async (t) => {
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => socket.resetAndDestroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const url = `postgres://postgres@127.0.0.1:${(server.address() as net.AddressInfo).port}/db`
  await assertUnavailable(t, await appOn(t, url), /^(ECONNRESET|CONNECTION_CLOSED)$/)
})
