// GET /v1/revocations under transactions that commit out of order: an event that commits after a later one was served
// is still served, never skipped behind the cursor.
import type { ReservedSql } from 'postgres'
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import { createSession } from '../helpers/sessions.js'

type Page = { revocations: Array<{ cursor: string; sessionId: string; type: string }>; nextCursor: string }

t.test('revocations: events that commit out of order are all served, in an order no open transaction can precede', async (t) => {
  const { app, sql } = await setup(t)
  const sessions = await Promise.all(['t1', 't2', 't3', 't4'].map((userId) => createSession(app, { userId })))
  const [a, b, c, d] = sessions.map((s) => s.session.id)
  const poll = async (since: string) => {
    const res = await call(app, { method: 'GET', url: `/v1/revocations?since=${since}&wait=0` })
    t.equal(res.statusCode, 200)
    return res.json() as Page
  }
  const start = ((await call(app, { method: 'GET', url: '/v1/revocations' })).json() as Page).nextCursor
  const revokeIn = (tx: ReservedSql, id: string) => tx`
    with s as (update sessions set revoked_at = now(), revoke_reason = 'logout' where id = ${id} returning *)
    insert into audit_events (type, session_id, user_id, actor, reason) select 'revoked', id, user_id, 'test', 'logout' from s`

  // T1 writes the event with the lower id and stays open; T2 writes the next one and commits.
  const t1 = await sql.reserve()
  const t2 = await sql.reserve()
  t.teardown(() => { t1.release(); t2.release() })
  await t1`begin`
  await revokeIn(t1, a)
  await t2`begin`
  await revokeIn(t2, b)
  await t2`commit`
  const [{ ids }] = await sql<{ ids: string[] }[]>`select array_agg(session_id order by id) as ids from audit_events where type = 'revoked'`
  t.same(ids, [b], 'only T2\'s event is visible, and T1\'s id is the lower one')
  const whileOpen = await poll(start)
  t.same(whileOpen.revocations.map((r) => r.sessionId), [], 'T2\'s event is not served while T1, which may still commit below it, is open')
  await t1`commit`
  const afterCommit = await poll(whileOpen.nextCursor)
  t.same(afterCommit.revocations.map((r) => r.sessionId), [a, b], 'once T1 commits, both are served, T1\'s first')

  // T3 takes its transaction id first but writes its event after T4 wrote one: T3's event has the higher id and commits
  // first, while T4 is still open. T4's event must still be served after T3's.
  const t3 = await sql.reserve()
  const t4 = await sql.reserve()
  t.teardown(() => { t3.release(); t4.release() })
  await t3`begin`
  await t3`select pg_current_xact_id()`
  await t4`begin`
  await revokeIn(t4, d)
  await revokeIn(t3, c)
  await t3`commit`
  const third = await poll(afterCommit.nextCursor)
  t.same(third.revocations.map((r) => r.sessionId), [c], 'T3, whose transaction is older than T4, is served')
  await t4`commit`
  const fourth = await poll(third.nextCursor)
  t.same(fourth.revocations.map((r) => r.sessionId), [d], 'T4\'s event, with the lower id, is served after it commits')
  const done = await poll(fourth.nextCursor)
  t.same(done, { revocations: [], nextCursor: fourth.nextCursor }, 'nothing is served twice')
})

t.test('revocations: a long-poll waiting behind an open transaction answers once it commits', async (t) => {
  const { app, sql } = await setup(t)
  const [x, y] = await Promise.all(['w1', 'w2'].map((userId) => createSession(app, { userId })))
  const start = ((await call(app, { method: 'GET', url: '/v1/revocations' })).json() as Page).nextCursor
  const open = await sql.reserve()
  t.teardown(() => open.release())
  await open`begin`
  await open`select pg_current_xact_id()`
  await call(app, { method: 'POST', url: '/v1/sessions/revoke', payload: { token: x.token } })
  const waiting = call(app, { method: 'GET', url: `/v1/revocations?since=${start}&wait=10` })
  await new Promise((resolve) => setTimeout(resolve, 300))
  await open`update sessions set revoked_at = now(), revoke_reason = 'admin' where id = ${y.session.id}`
  await open`insert into audit_events (type, session_id, user_id, actor, reason) values ('revoked', ${y.session.id}, 'w2', 'test', 'admin')`
  await open`commit`
  const page = (await waiting).json() as Page
  t.same(page.revocations.map((r) => r.sessionId), [y.session.id, x.session.id], 'both served, the older transaction first')
})

t.test('revocations: a cursor is not expired for events that merely committed late', async (t) => {
  const { app, sql } = await setup(t)
  const s = await createSession(app, { userId: 'late' })
  const open = await sql.reserve()
  t.teardown(() => open.release())
  await open`begin`
  await open`insert into audit_events (type, session_id, user_id, actor, reason) values ('revoked', ${s.session.id}, 'late', 'test', 'admin')`
  const start = ((await call(app, { method: 'GET', url: '/v1/revocations' })).json() as Page).nextCursor
  await call(app, { method: 'POST', url: '/v1/sessions/revoke', payload: { token: s.token } })
  const res = await call(app, { method: 'GET', url: `/v1/revocations?since=${start}&wait=0` })
  t.equal(res.statusCode, 200, 'a cursor issued while a transaction was open is still valid')
  await open`rollback`
})
