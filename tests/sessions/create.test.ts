// POST /v1/sessions: the issued token and session, deadlines from the policy, and every input rule of the contract.
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import {
  RFC3339_UTC, SESSION_FIELDS, SESSION_ID_FORMAT, TOKEN_FORMAT,
  assertError, create, dataOfBytes, issue, row, seconds, sha256,
} from './_support.js'

const { app, sql } = await setup(t, {
  SESSION_IDLE_TIMEOUT: '1800',
  SESSION_ABSOLUTE_TIMEOUT: '86400',
  SESSION_POLICIES: JSON.stringify({ short: { idleTimeout: 300, absoluteTimeout: 3600 } }),
})

async function rowsFor(userId: string): Promise<number> {
  const [{ count }] = await sql<{ count: number }[]>`select count(*)::int as count from sessions where user_id = ${userId}`
  return count
}

t.test('create: 201 with token, session and setCookie', async (t) => {
  const res = await create(app, { userId: 'c-shape' })
  t.equal(res.statusCode, 201, res.body)
  t.same(Object.keys(res.json()).sort(), ['session', 'setCookie', 'token'])
})

t.test('create: the token is 43 base64url characters', async (t) => {
  const { token } = await issue(app, { userId: 'c-token' })
  t.match(token, TOKEN_FORMAT)
})

t.test('create: the session has exactly the contract fields with their types', async (t) => {
  const { session } = await issue(app, { userId: 'c-fields', data: { lang: 'en_US' } })
  t.same(Object.keys(session).sort(), [...SESSION_FIELDS].sort())
  t.match(session.id, SESSION_ID_FORMAT)
  t.equal(session.userId, 'c-fields')
  t.equal(session.policy, 'default')
  t.same(session.data, { lang: 'en_US' })
  t.equal(session.version, 1)
  for (const field of ['createdAt', 'lastSeenAt', 'idleExpiresAt', 'expiresAt'] as const) t.match(session[field], RFC3339_UTC, field)
  t.equal(session.ip, null)
  t.equal(session.userAgent, null)
})

t.test('create: data defaults to an empty object', async (t) => {
  const { session } = await issue(app, { userId: 'c-nodata' })
  t.same(session.data, {})
})

t.test('create: idleExpiresAt - lastSeenAt is the default policy idle timeout exactly', async (t) => {
  const { session } = await issue(app, { userId: 'c-idle' })
  t.equal(Date.parse(session.idleExpiresAt) - Date.parse(session.lastSeenAt), 1800_000)
})

t.test('create: expiresAt - createdAt is the default policy absolute timeout exactly', async (t) => {
  const { session } = await issue(app, { userId: 'c-abs' })
  t.equal(Date.parse(session.expiresAt) - Date.parse(session.createdAt), 86400_000)
})

t.test('create: a named policy sets its own deadlines', async (t) => {
  const { session } = await issue(app, { userId: 'c-short', policy: 'short' })
  t.equal(session.policy, 'short')
  t.equal(seconds(session.idleExpiresAt) - seconds(session.lastSeenAt), 300)
  t.equal(seconds(session.expiresAt) - seconds(session.createdAt), 3600)
})

t.test('create: the store keeps only the SHA-256 of the token', async (t) => {
  const { token, session } = await issue(app, { userId: 'c-hash' })
  const [stored] = await sql<{ token_hash: Buffer; everything: string }[]>`
    select token_hash, to_jsonb(s)::text as everything from sessions s where id = ${session.id}`
  t.same(stored.token_hash, sha256(token))
  t.notOk(stored.everything.includes(token), 'no column holds the token')
})

t.test('create: an unknown policy is a 400', async (t) => {
  const res = await create(app, { userId: 'c-policy', policy: 'nope' })
  assertError(t, res, 400, 'invalid_request')
  t.equal(await rowsFor('c-policy'), 0)
})

for (const field of ['token', 'id', 'version'] as const) {
  t.test(`create: a client-chosen ${field} is a 400 and inserts nothing`, async (t) => {
    const value = field === 'version' ? 7 : field === 'id' ? 's_01ARZ3NDEKTSV4RRFFQ69G5FAV' : 'A'.repeat(43)
    const userId = `c-extra-${field}`
    const res = await create(app, { userId, [field]: value })
    assertError(t, res, 400, 'invalid_request')
    t.equal(await rowsFor(userId), 0)
  })
}

t.test('create: a numeric userId is a 400, not coerced', async (t) => {
  const res = await create(app, { userId: 42 })
  assertError(t, res, 400, 'invalid_request')
  t.equal(await rowsFor('42'), 0)
})

t.test('create: data that is not an object is a 400', async (t) => {
  for (const data of ['x', 5, true, null, [1, 2]]) {
    const res = await create(app, { userId: 'c-data-type', data })
    assertError(t, res, 400, 'invalid_request')
  }
  t.equal(await rowsFor('c-data-type'), 0)
})

t.test('create: data of exactly 16384 UTF-8 bytes of JSON is accepted', async (t) => {
  const data = dataOfBytes(16384)
  t.equal(Buffer.byteLength(JSON.stringify(data), 'utf8'), 16384, 'fixture size')
  const res = await create(app, { userId: 'c-16k', data })
  t.equal(res.statusCode, 201, res.body.slice(0, 300))
  t.same(res.json().session.data, data)
})

t.test('create: data of 16385 UTF-8 bytes of JSON is a 413 payload_too_large', async (t) => {
  const data = dataOfBytes(16385)
  t.equal(Buffer.byteLength(JSON.stringify(data), 'utf8'), 16385, 'fixture size')
  t.ok(data.s.length < 16384, 'fewer UTF-16 units than bytes, so a length check would miss it')
  const res = await create(app, { userId: 'c-16k1', data })
  assertError(t, res, 413, 'payload_too_large')
  t.equal(await rowsFor('c-16k1'), 0)
})

t.test('create: data containing NUL is a 400', async (t) => {
  for (const payload of ['{"userId":"c-nul","data":{"a":"x\\u0000y"}}', '{"userId":"c-nul","data":{"k\\u0000":1}}']) {
    const res = await call(app, { method: 'POST', url: '/v1/sessions', payload, headers: { 'content-type': 'application/json' } })
    assertError(t, res, 400, 'invalid_request')
  }
  t.equal(await rowsFor('c-nul'), 0)
})

t.test('create: data containing a lone surrogate is a 400', async (t) => {
  for (const payload of ['{"userId":"c-sur","data":{"a":"x\\ud800"}}', '{"userId":"c-sur","data":{"a":["\\udc00"]}}', '{"userId":"c-sur","data":{"\\ud83d":1}}']) {
    const res = await call(app, { method: 'POST', url: '/v1/sessions', payload, headers: { 'content-type': 'application/json' } })
    assertError(t, res, 400, 'invalid_request')
  }
  t.equal(await rowsFor('c-sur'), 0)
})

t.test('create: a userId with a control character is a 400', async (t) => {
  for (const userId of ['a\u0000b', 'a\nb', 'a\u001fb', 'a\u007fb']) {
    assertError(t, await create(app, { userId }), 400, 'invalid_request')
  }
})

t.test('create: a userId of 256 characters is accepted and 257 is a 400', async (t) => {
  t.equal((await create(app, { userId: 'u'.repeat(256) })).statusCode, 201)
  assertError(t, await create(app, { userId: 'u'.repeat(257) }), 400, 'invalid_request')
  t.equal(await rowsFor('u'.repeat(257)), 0)
})

t.test('create: an empty userId is a 400', async (t) => {
  assertError(t, await create(app, { userId: '' }), 400, 'invalid_request')
})

t.test('create: a non-ASCII userId is accepted as given', async (t) => {
  const { session } = await issue(app, { userId: 'Zoë 42/x 😀' })
  t.equal(session.userId, 'Zoë 42/x 😀')
})

t.test('create: a userAgent of 1024 characters is accepted and 1025 is a 400', async (t) => {
  const ok = await create(app, { userId: 'c-ua', userAgent: 'M'.repeat(1024) })
  t.equal(ok.statusCode, 201, ok.body.slice(0, 300))
  assertError(t, await create(app, { userId: 'c-ua', userAgent: 'M'.repeat(1025) }), 400, 'invalid_request')
  t.equal(await rowsFor('c-ua'), 1)
})

t.test('create: ip and userAgent are stored and returned as given', async (t) => {
  const userAgent = 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0'
  const { session } = await issue(app, { userId: 'c-ipua', ip: '203.0.113.7', userAgent })
  t.equal(session.ip, '203.0.113.7')
  t.equal(session.userAgent, userAgent)
  const stored = await row(sql, session.id)
  t.equal(stored?.ip, '203.0.113.7')
  t.equal(stored?.user_agent, userAgent)
})

t.test('create: an ip with a control character is a 400', async (t) => {
  assertError(t, await create(app, { userId: 'c-ipbad', ip: '203.0.113.7\r\n' }), 400, 'invalid_request')
})

t.test('create: a missing userId is a 400', async (t) => {
  assertError(t, await create(app, { data: {} }), 400, 'invalid_request')
})

t.test('create: malformed JSON is a 400', async (t) => {
  const res = await call(app, { method: 'POST', url: '/v1/sessions', payload: '{"userId":', headers: { 'content-type': 'application/json' } })
  assertError(t, res, 400, 'invalid_request')
})
