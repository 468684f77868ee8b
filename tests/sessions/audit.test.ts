// Audit events (read from audit_events directly): one per transition, the right type, actor, reason and creation ip/userAgent, never a token.
import t from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { ADMIN_KEY, OTHER_APP_KEY, call, setup } from '../helpers/app.js'
import { revoke, rotate, touch, validate } from '../helpers/sessions.js'
import { eventCount, events, issue as issueRaw, patch, sha256, type Issued } from './_support.js'

const { app, sql } = await setup(t, {
  SESSION_POLICIES: JSON.stringify({ finance: { idleTimeout: 900, absoluteTimeout: 28800, maxPerUser: 1, onLimit: 'evict_oldest' } }),
})

const IP = '203.0.113.7'
const UA = 'Mozilla/5.0 (audit test)'
// Every token this file ever sees, to prove none reaches the audit log.
const seenTokens: string[] = []

async function issue(body: Record<string, unknown>, key?: string): Promise<Issued> {
  const issued = await issueRaw(app, { ip: IP, userAgent: UA, ...body }, key)
  seenTokens.push(issued.token)
  return issued
}

function remember(res: LightMyRequestResponse): LightMyRequestResponse {
  if (res.statusCode === 200 && typeof res.json().token === 'string') seenTokens.push(res.json().token)
  return res
}

const types = async (id: string) => (await events(sql, id)).map((e) => e.type)

t.test('audit: create writes one created event with actor, no reason, and the given ip and userAgent', async (t) => {
  const { session } = await issue({ userId: 'a-created' })
  const list = await events(sql, session.id)
  t.equal(list.length, 1)
  t.match(list[0], { type: 'created', session_id: session.id, user_id: 'a-created', actor: 'app', reason: null, ip: IP, user_agent: UA })
})

t.test('audit: the actor is the name of the API key that created the session', async (t) => {
  const { session } = await issue({ userId: 'a-other' }, OTHER_APP_KEY)
  t.match(await events(sql, session.id), [{ type: 'created', actor: 'other' }])
})

t.test('audit: a session without ip or userAgent records null for both', async (t) => {
  const issued = await issueRaw(app, { userId: 'a-anon' })
  seenTokens.push(issued.token)
  t.match(await events(sql, issued.session.id), [{ type: 'created', ip: null, user_agent: null }])
})

t.test('audit: rotate writes one rotated event with the creation ip and userAgent', async (t) => {
  const { token, session } = await issue({ userId: 'a-rotated' })
  remember(await rotate(app, token))
  const list = await events(sql, session.id)
  t.same(list.map((e) => e.type), ['created', 'rotated'])
  t.match(list[1], { actor: 'app', ip: IP, user_agent: UA })
})

t.test('audit: logout writes one revoked event with reason logout', async (t) => {
  const { token, session } = await issue({ userId: 'a-logout' })
  await revoke(app, token)
  const list = await events(sql, session.id)
  t.same(list.map((e) => e.type), ['created', 'revoked'])
  t.match(list[1], { actor: 'app', reason: 'logout', ip: IP, user_agent: UA })
})

t.test('audit: a revoke by another key records that key as actor and the given reason', async (t) => {
  const { token, session } = await issue({ userId: 'a-logout-other' })
  await call(app, { method: 'POST', url: '/v1/sessions/revoke', payload: { token, reason: 'stolen' }, key: OTHER_APP_KEY })
  t.match((await events(sql, session.id))[1], { type: 'revoked', actor: 'other', reason: 'stolen' })
})

t.test('audit: DELETE by id with the admin key records actor ops and reason admin', async (t) => {
  const { session } = await issue({ userId: 'a-admin-delete' })
  t.equal((await call(app, { method: 'DELETE', url: `/v1/sessions/${session.id}`, key: ADMIN_KEY })).statusCode, 204)
  const list = await events(sql, session.id)
  t.same(list.map((e) => e.type), ['created', 'revoked'])
  t.match(list[1], { actor: 'ops', reason: 'admin', ip: IP, user_agent: UA })
})

t.test('audit: revoke-all with the admin key writes one revoked event per session, actor ops', async (t) => {
  const [kept, a, b] = [await issue({ userId: 'a-revoke-all' }), await issue({ userId: 'a-revoke-all' }), await issue({ userId: 'a-revoke-all' })]
  const res = await call(app, { method: 'DELETE', url: `/v1/users/a-revoke-all/sessions?except=${kept.session.id}&reason=password_change`, key: ADMIN_KEY })
  t.same(res.json(), { revoked: 2 })
  for (const { session } of [a, b]) {
    t.match(await events(sql, session.id), [{ type: 'created' }, { type: 'revoked', actor: 'ops', reason: 'password_change' }])
  }
  t.same(await types(kept.session.id), ['created'])
})

t.test('audit: mass revocation by the admin key writes revoked events with actor ops', async (t) => {
  const { session } = await issue({ userId: 'a-mass' })
  const res = await call(app, { method: 'DELETE', url: '/v1/admin/sessions?userId=a-mass&reason=incident_42', key: ADMIN_KEY })
  t.same(res.json(), { revoked: 1, done: true, nextCursor: null })
  t.match(await events(sql, session.id), [{ type: 'created' }, { type: 'revoked', actor: 'ops', reason: 'incident_42' }])
})

t.test('audit: an eviction writes limit_evicted (reason session_limit) for the old session and created for the new', async (t) => {
  const old = await issue({ userId: 'a-evict', policy: 'finance' })
  const fresh = await issue({ userId: 'a-evict', policy: 'finance', ip: '198.51.100.9' }, OTHER_APP_KEY)
  const list = await events(sql, old.session.id)
  t.same(list.map((e) => e.type), ['created', 'limit_evicted'])
  t.match(list[1], { actor: 'other', reason: 'session_limit', ip: IP, user_agent: UA })
  t.match(await events(sql, fresh.session.id), [{ type: 'created', ip: '198.51.100.9' }])
})

t.test('audit: a data change writes one data_updated event', async (t) => {
  const { session } = await issue({ userId: 'a-data', data: { a: 1 } })
  await patch(app, session.id, { a: 2 })
  const list = await events(sql, session.id)
  t.same(list.map((e) => e.type), ['created', 'data_updated'])
  t.match(list[1], { actor: 'app', ip: IP, user_agent: UA })
})

t.test('audit: a whole lifecycle writes exactly its transitions, in order', async (t) => {
  const { token, session } = await issue({ userId: 'a-lifecycle', data: { a: 1 } })
  await validate(app, token)
  await touch(app, token)
  await patch(app, session.id, { a: 2 })
  await patch(app, session.id, { b: 3 })
  const rotated = remember(await rotate(app, token)).json()
  await validate(app, rotated.token)
  await revoke(app, rotated.token, 'logout')
  t.same(await types(session.id), ['created', 'data_updated', 'data_updated', 'rotated', 'revoked'])
})

t.test('audit: failed and no-op operations write no event', async (t) => {
  const { token, session } = await issue({ userId: 'a-noop', data: { a: 1 } })
  const rotated = remember(await rotate(app, token)).json()
  // Past the grace period (a logout racing a rotation ends the session), the replaced token logs nothing out.
  await sql`update rotated_tokens set rotated_at = now() - interval '1 minute' where session_id = ${session.id}`
  const before = await eventCount(sql)
  const attempts: Array<[string, () => Promise<LightMyRequestResponse>]> = [
    ['validate', () => validate(app, rotated.token)],
    ['validate with touch', () => validate(app, rotated.token, { touch: true })],
    ['touch', () => touch(app, rotated.token)],
    ['validate old token', () => validate(app, token)],
    ['rotate old token', () => rotate(app, token)],
    ['revoke unknown token', () => revoke(app, 'N'.repeat(43))],
    ['revoke malformed token', () => revoke(app, 'nope')],
    ['revoke a token rotated away a minute ago', () => revoke(app, token)],
    ['no-op patch', () => patch(app, session.id, { a: 1 })],
    ['empty patch', () => patch(app, session.id, {})],
    ['patch with stale If-Match', () => patch(app, session.id, { a: 5 }, '"7"')],
    ['patch too large', () => patch(app, session.id, { big: 'x'.repeat(17000) })],
    ['create with unknown policy', () => call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'a-noop', policy: 'nope' } })],
    ['create with extra field', () => call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'a-noop', token: 'x' } })],
    ['delete unknown id', () => call(app, { method: 'DELETE', url: '/v1/sessions/s_01ARZ3NDEKTSV4RRFFQ69G5FAV' })],
    ['revoke-all of a user without sessions', () => call(app, { method: 'DELETE', url: '/v1/users/a-nobody/sessions' })],
  ]
  for (const [what, attempt] of attempts) {
    await attempt()
    t.equal(await eventCount(sql), before, `no event after: ${what}`)
  }
})

t.test('audit: revoking an already revoked session writes no second event', async (t) => {
  const { token, session } = await issue({ userId: 'a-twice' })
  await revoke(app, token)
  await revoke(app, token, 'again')
  await call(app, { method: 'DELETE', url: `/v1/sessions/${session.id}?reason=again` })
  await call(app, { method: 'DELETE', url: '/v1/users/a-twice/sessions' })
  t.same(await types(session.id), ['created', 'revoked'])
})

t.test('audit: rotations under a race write exactly one rotated event', async (t) => {
  const { token, session } = await issue({ userId: 'a-race' })
  const results = await Promise.all(Array.from({ length: 10 }, () => rotate(app, token)))
  results.forEach(remember)
  t.same(await types(session.id), ['created', 'rotated'])
})

// Runs last: every token seen above must be absent from every column of every event.
t.test('audit: no column of audit_events contains a token or its hash', async (t) => {
  const rows = await sql<{ all: string }[]>`select to_jsonb(e)::text as all from audit_events e`
  const dump = rows.map((r) => r.all).join('\n')
  t.ok(rows.length > 20, `${rows.length} events checked`)
  t.ok(seenTokens.length > 20, `${seenTokens.length} tokens checked`)
  const leaked = seenTokens.filter((token) =>
    dump.includes(token) || dump.includes(sha256(token).toString('hex')) || dump.includes(sha256(token).toString('base64')))
  t.same(leaked, [])
})
