// GET /v1/users/{userId}/sessions: the user's active sessions, newest first, with public fields only, paged.
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { revoke } from '../helpers/sessions.js'
import { SESSION_FIELDS, assertError, issue, sha256 } from '../sessions/_support.js'

const { app, sql } = await setup(t)

const list = (userId: string) => call(app, { method: 'GET', url: `/v1/users/${encodeURIComponent(userId)}/sessions` })

t.test('list: only active sessions are listed', async (t) => {
  const [active, revoked, idle] = [
    await issue(app, { userId: 'l-active' }),
    await issue(app, { userId: 'l-active' }),
    await issue(app, { userId: 'l-active' }),
  ]
  await revoke(app, revoked.token)
  await ageSession(sql, idle.session.id, { seconds: 7201 })
  const res = await list('l-active')
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json().sessions.map((s: { id: string }) => s.id), [active.session.id])
})

t.test('list: newest first', async (t) => {
  const ids: string[] = []
  for (let i = 0; i < 4; i++) ids.push((await issue(app, { userId: 'l-order' })).session.id)
  const listed = (await list('l-order')).json().sessions.map((s: { id: string }) => s.id)
  t.same(listed, [...ids].reverse())
})

t.test('list: newest first by creation time even when ids were minted in another order', async (t) => {
  const older = await issue(app, { userId: 'l-created' })
  const newer = await issue(app, { userId: 'l-created' })
  // the later-minted session is moved an hour into the past: it is now the older one
  await ageSession(sql, newer.session.id, { seconds: 3600 })
  const listed = (await list('l-created')).json().sessions.map((s: { id: string }) => s.id)
  t.same(listed, [older.session.id, newer.session.id])
})

t.test('list: the body has only the sessions array of whitelisted session fields, no token or hash', async (t) => {
  const issued = [await issue(app, { userId: 'l-fields', ip: '198.51.100.1', userAgent: 'curl/8' }), await issue(app, { userId: 'l-fields' })]
  const res = await list('l-fields')
  const body = res.json()
  t.same(Object.keys(body), ['sessions', 'nextCursor'])
  t.equal(body.sessions.length, 2)
  for (const session of body.sessions) {
    for (const field of Object.keys(session)) t.ok((SESSION_FIELDS as readonly string[]).includes(field), `field ${field} is public`)
  }
  for (const { token } of issued) {
    t.notOk(res.body.includes(token), 'no token')
    t.notOk(res.body.includes(sha256(token).toString('hex')) || res.body.includes(sha256(token).toString('base64')), 'no hash')
  }
})

t.test('list: another user\'s sessions are not listed', async (t) => {
  await issue(app, { userId: 'l-mine' })
  await issue(app, { userId: 'l-theirs' })
  const listed = (await list('l-mine')).json().sessions
  t.equal(listed.length, 1)
  t.equal(listed[0].userId, 'l-mine')
})

t.test('list: a user with no sessions gets an empty list', async (t) => {
  const res = await list('l-nobody')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { sessions: [], nextCursor: null })
})

for (const userId of ['Zoë Müller', 'user with spaces', '山田 太郎 😀', 'Zoë 42/x', 'a+b&c=d?e#f%']) {
  t.test(`list: the percent-encoded userId ${JSON.stringify(userId)} finds its sessions`, async (t) => {
    const { session } = await issue(app, { userId })
    const res = await list(userId)
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json().sessions.map((s: { id: string }) => s.id), [session.id])
  })
}

t.test('list: a userId with a control character is a 400', async (t) => {
  assertError(t, await list('a\u0001b'), 400, 'invalid_request')
})

// `count` active sessions of one user written directly, created a second apart (the last newest), each with `dataBytes` of data.
async function fillUser(userId: string, prefix: string, count: number, dataBytes = 0): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    insert into sessions (id, token_hash, user_id, policy, data, idle_timeout, created_at, idle_expires_at, expires_at)
    select 's_' || ${prefix} || lpad(upper(to_hex(g)), ${26 - prefix.length}, '0'), sha256((${prefix} || g)::bytea), ${userId}, 'default',
           case when ${dataBytes}::int = 0 then '{}'::jsonb else jsonb_build_object('blob', repeat('x', ${dataBytes}::int)) end,
           3600, now() - make_interval(secs => ${count}::int - g), now() + interval '1 hour', now() + interval '1 day'
      from generate_series(1, ${count}::int) g
    returning id`
  return rows.map((row) => row.id)
}

async function allPages(userId: string, query = ''): Promise<{ ids: string[]; pages: number[]; bytes: number[] }> {
  const ids: string[] = []
  const pages: number[] = []
  const bytes: number[] = []
  let cursor: string | undefined
  do {
    const res = await call(app, { method: 'GET', url: `/v1/users/${userId}/sessions?${query}${cursor === undefined ? '' : `&cursor=${cursor}`}` })
    if (res.statusCode !== 200) throw new Error(res.body)
    const body = res.json() as { sessions: Array<{ id: string }>; nextCursor: string | null }
    ids.push(...body.sessions.map((s) => s.id))
    pages.push(body.sessions.length)
    bytes.push(res.body.length)
    // A string, or the last page (anything else, such as no nextCursor at all, ends the walk too).
    cursor = typeof body.nextCursor === 'string' ? body.nextCursor : undefined
  } while (cursor !== undefined)
  return { ids, pages, bytes }
}

t.test('list: 250 sessions come in pages of 100 by default, each once, newest first, following nextCursor', async (t) => {
  const ids = await fillUser('l-paged', 'P', 250)
  const { ids: listed, pages } = await allPages('l-paged')
  t.same(pages, [100, 100, 50])
  t.same(listed, [...ids].reverse())
})

t.test('list: limit sets the page size, at most 1000', async (t) => {
  await fillUser('l-limit', 'Q', 30)
  t.same((await allPages('l-limit', 'limit=7')).pages, [7, 7, 7, 7, 2])
  assertError(t, await call(app, { method: 'GET', url: '/v1/users/l-limit/sessions?limit=1001' }), 400, 'invalid_request')
  assertError(t, await call(app, { method: 'GET', url: '/v1/users/l-limit/sessions?limit=0' }), 400, 'invalid_request')
})

t.test('list: one answer carries about 1 MiB of data at most, however large the sessions\' data', async (t) => {
  const ids = await fillUser('l-large', 'R', 200, 16_000)
  const { ids: listed, pages, bytes } = await allPages('l-large', 'limit=1000')
  t.same(listed, [...ids].reverse(), 'every session once, in order')
  t.ok(pages.length >= 4, `pages of ${pages.join(', ')}`)
  for (const size of bytes) t.ok(size < 1.1 * 1024 * 1024, `an answer of ${size} bytes`)
})

t.test('list: one session whose data alone is over the budget still comes, one per page', async (t) => {
  const ids = await fillUser('l-one', 'S', 2, 16_000)
  t.same((await allPages('l-one', 'limit=1')).ids, [...ids].reverse())
})

t.test('list: a cursor that this listing did not issue is a 400', async (t) => {
  assertError(t, await call(app, { method: 'GET', url: '/v1/users/l-x/sessions?cursor=czpzXzAxQVJaM05ERUtUU1Y0UlJGRlE2OUc1RkFW' }), 400, 'invalid_request')
})
