// Tokens: 256-bit CSPRNG values in base64url, stored only as hashes that cannot be replayed, malformed ones rejected without a query.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import pino from 'pino'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { buildServer } from '../../src/server.js'
import { BASE_ENV, call, setup } from '../helpers/app.js'
import { ROOT } from '../support/process.js'

const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/

interface Issued { token: string; session: { id: string } }

async function create(app: FastifyInstance, userId: string): Promise<Issued> {
  const res = await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId, data: { lang: 'en' } } })
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  return res.json()
}

// Runs fn over items with at most `width` in flight.
async function inBatches<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(fn))))
  return out
}

const validate = (app: FastifyInstance, token: string) =>
  call(app, { method: 'POST', url: '/v1/sessions/validate', payload: { token } })

const authByHeader = (app: FastifyInstance, token: string) =>
  call(app, { method: 'GET', url: '/v1/auth', headers: { 'x-session-token': token } })

// @fastify/cookie percent-decodes cookie values, so any string arrives as itself.
const authByCookie = (app: FastifyInstance, token: string) =>
  call(app, { method: 'GET', url: '/v1/auth', headers: { cookie: `sid=${encodeURIComponent(token)}` } })

function isNotFound(t: Test, res: LightMyRequestResponse, what: string) {
  t.equal(res.statusCode, 401, `${what}: 401`)
  t.match(res.json(), { error: { code: 'session_invalid', reason: 'not_found' } }, `${what}: reason not_found`)
}

t.test('2,000 creates: every token is 43 base64url characters and none repeats', async (t) => {
  const { app } = await setup(t)
  const issued = await inBatches(Array.from({ length: 2000 }, (_, i) => `user-${i % 100}`), 25, (userId) => create(app, userId))
  const tokens = issued.map((i) => i.token)
  const malformed = tokens.filter((token) => !TOKEN_FORMAT.test(token))
  t.same(malformed, [], 'every token matches ^[A-Za-z0-9_-]{43}$')
  t.equal(new Set(tokens).size, tokens.length, 'no duplicate tokens')
  t.equal(new Set(issued.map((i) => i.session.id)).size, issued.length, 'no duplicate ids')
  t.ok(tokens.every((token) => Buffer.from(token, 'base64url').length === 32), 'each decodes to 32 bytes (256 bits)')
})

t.test('src/ never uses Math.random', async (t) => {
  const files: string[] = []
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else files.push(full)
    }
  }
  walk(path.join(ROOT, 'src'))
  t.ok(files.length > 10, `read ${files.length} files`)
  const hits = files.filter((file) => readFileSync(file, 'utf8').includes('Math.random')).map((file) => path.relative(ROOT, file))
  t.same(hits, [], 'no file in src/ mentions Math.random')
})

t.test('stored data: no token appears in any column of any table; hashes cannot be replayed', async (t) => {
  const { app, sql } = await setup(t)
  const issued = await inBatches(Array.from({ length: 200 }, (_, i) => `dump-user-${i % 20}`), 20, (userId) => create(app, userId))
  const everToken = issued.map((i) => i.token)
  // Rotated-away and revoked tokens must not be kept in readable form either.
  for (const { token } of issued.slice(0, 50)) {
    const res = await call(app, { method: 'POST', url: '/v1/sessions/rotate', payload: { token } })
    t.equal(res.statusCode, 200)
    everToken.push(res.json().token)
  }
  for (const { token } of issued.slice(50, 100)) {
    t.equal((await call(app, { method: 'POST', url: '/v1/sessions/revoke', payload: { token } })).statusCode, 204)
  }

  const tables = await sql<{ name: string }[]>`
    select table_name as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by 1`
  t.ok(tables.some((row) => row.name === 'sessions'), `tables read: ${tables.map((row) => row.name).join(', ')}`)
  let dump = ''
  for (const { name } of tables) {
    const rows = await sql.unsafe<{ j: string }[]>(`select row_to_json(t)::text as j from "${name}" t`)
    dump += rows.map((row) => row.j).join('\n') + '\n'
  }
  const lowerDump = dump.toLowerCase()

  // Positive control: the dump does hold each current token's hash, so the search below looks in the right place.
  const current = issued.slice(50).map((i) => i.token)
  const hashed = current.filter((token) => lowerDump.includes(createHash('sha256').update(token).digest('hex')))
  t.equal(hashed.length, current.length, 'the SHA-256 of every current token is in the dump (search works)')

  const leaks: string[] = []
  for (const token of everToken) {
    const bytes = Buffer.from(token, 'base64url')
    const forms: Record<string, string> = {
      raw: token,
      'hex of its bytes': bytes.toString('hex'),
      'base64 of its bytes': bytes.toString('base64'),
      'base64 without padding': bytes.toString('base64').replace(/=+$/, ''),
      'hex of the token text': Buffer.from(token, 'utf8').toString('hex'),
    }
    for (const [form, value] of Object.entries(forms)) {
      const haystack = form.startsWith('hex') ? lowerDump : dump
      if (haystack.includes(value)) leaks.push(`${form}: ${value}`)
    }
  }
  t.same(leaks, [], `none of ${everToken.length} tokens appears in ${dump.length} characters of table data, in any encoding`)

  t.test('a token_hash from the database presented as a token is 401 not_found', async (t) => {
    const hashes = await sql<{ h: Buffer }[]>`
      (select token_hash as h from sessions where revoked_at is null limit 3)
      union all
      (select token_hash as h from rotated_tokens limit 2)`
    t.equal(hashes.length, 5)
    for (const { h } of hashes) {
      const forms: Record<string, string> = {
        hex: h.toString('hex'),
        'upper-case hex': h.toString('hex').toUpperCase(),
        'postgres bytea text': `\\x${h.toString('hex')}`,
        base64url: h.toString('base64url'),
        base64: h.toString('base64'),
        'raw bytes as latin1': h.toString('latin1'),
      }
      for (const [form, value] of Object.entries(forms)) {
        isNotFound(t, await validate(app, value), `validate with the hash as ${form}`)
        isNotFound(t, await authByCookie(app, value), `GET /v1/auth, cookie with the hash as ${form}`)
        if (/^[\x20-\x7e]*$/.test(value)) isNotFound(t, await authByHeader(app, value), `GET /v1/auth, X-Session-Token with the hash as ${form}`)
      }
    }
  })
})

t.test('malformed tokens are rejected without a database query', async (t) => {
  const unreachable = 'postgres://127.0.0.1:1/x'
  const config = loadConfig({ ...BASE_ENV, DATABASE_URL: unreachable })
  const app = await buildServer({
    config,
    sql: postgres(unreachable, { max: 1, connect_timeout: 1, onnotice: () => {} }),
    cron: false,
    loggerInstance: pino({ level: 'silent' }),
  })
  t.teardown(() => app.close())
  await app.ready()

  const malformed: Record<string, string> = {
    empty: '',
    '10 KB': 'a'.repeat(10 * 1024),
    '60 KB': 'b'.repeat(60 * 1024),
    'non-ASCII letters': 'ä'.repeat(43),
    emoji: '🙂'.repeat(22),
    '42 characters': 'A'.repeat(42),
    '44 characters': 'A'.repeat(44),
    'padded base64': `${'A'.repeat(42)}=`,
    'standard base64 alphabet': `${'A'.repeat(41)}+/`,
    'trailing newline': `${'A'.repeat(43)}\n`,
    'inner space': `${'A'.repeat(21)} ${'A'.repeat(21)}`,
    'NUL byte': `${'A'.repeat(42)}\u0000`,
  }
  for (const [what, token] of Object.entries(malformed)) {
    isNotFound(t, await validate(app, token), `validate, ${what}`)
    isNotFound(t, await call(app, { method: 'POST', url: '/v1/sessions/touch', payload: { token } }), `touch, ${what}`)
    isNotFound(t, await call(app, { method: 'POST', url: '/v1/sessions/rotate', payload: { token } }), `rotate, ${what}`)
    const revoked = await call(app, { method: 'POST', url: '/v1/sessions/revoke', payload: { token } })
    t.equal(revoked.statusCode, 204, `revoke, ${what}: 204 without a query`)
    if (token.length <= 10 * 1024) isNotFound(t, await authByCookie(app, token), `GET /v1/auth cookie, ${what}`)
    if (token.length <= 10 * 1024 && /^[\x20-\x7e]*$/.test(token)) isNotFound(t, await authByHeader(app, token), `GET /v1/auth header, ${what}`)
  }

  const wellFormed = 'Q'.repeat(43)
  for (const [what, res] of [
    ['validate', await validate(app, wellFormed)],
    ['GET /v1/auth', await authByHeader(app, wellFormed)],
  ] as const) {
    t.equal(res.statusCode, 503, `${what}, a well-formed unknown token needs the database: 503`)
    t.match(res.headers['retry-after'], /^\d+$/, `${what}: Retry-After in seconds`)
    t.match(res.json(), { error: { code: 'unavailable', message: String, details: [] } }, `${what}: the contract's error shape`)
    t.same(Object.keys(res.json()), ['error'], `${what}: nothing beside error`)
    t.notOk(res.body.includes(wellFormed), `${what}: the token is not echoed`)
    t.notMatch(res.body, /postgres|ECONNREFUSED|127\.0\.0\.1|SELECT/i, `${what}: no internals`)
  }
})
