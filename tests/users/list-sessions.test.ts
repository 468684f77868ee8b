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
