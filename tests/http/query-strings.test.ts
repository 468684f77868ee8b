// Unknown query parameters are a 400 on every route, as unknown body fields are: a typo on a destructive route
// (?user_id= for ?userId=, ?excpet= for ?except=) must not widen what the route does.
import t, { type Test } from 'tap'
import { ADMIN_KEY, call, setup } from '../helpers/app.js'
import { createSession, validate } from '../helpers/sessions.js'
import { routesOf } from '../support/routes.js'

const { app, sql } = await setup(t)

async function counts() {
  const [row] = await sql<{ active: number; events: number }[]>`
    select (select count(*)::int from sessions where revoked_at is null) as active, (select count(*)::int from audit_events) as events`
  return row
}

async function assertRejectedUnchanged(t: Test, method: 'DELETE', url: string, key?: string) {
  const before = await counts()
  const res = await call(app, { method, url, ...(key === undefined ? {} : { key }) })
  t.equal(res.statusCode, 400, res.body)
  t.match(res.json(), { error: { code: 'invalid_request', message: /^querystring/ } })
  t.same(await counts(), before, 'no session revoked, no event written')
}

t.test('DELETE /v1/admin/sessions?policy=default&user_id=x1 is a 400 and revokes nothing', async (t) => {
  const a = await createSession(app, { userId: 'x1' })
  const b = await createSession(app, { userId: 'x2' })
  await assertRejectedUnchanged(t, 'DELETE', '/v1/admin/sessions?policy=default&user_id=x1', ADMIN_KEY)
  for (const { token } of [a, b]) t.equal((await validate(app, token)).statusCode, 200, 'still valid')
})

t.test('DELETE /v1/users/{userId}/sessions?excpet=<id> is a 400 and revokes nothing', async (t) => {
  const kept = await createSession(app, { userId: 'typo-user' })
  const other = await createSession(app, { userId: 'typo-user' })
  await assertRejectedUnchanged(t, 'DELETE', `/v1/users/typo-user/sessions?excpet=${kept.session.id}`)
  for (const { token } of [kept, other]) t.equal((await validate(app, token)).statusCode, 200, 'still valid')
})

t.test('DELETE /v1/sessions/{id}?reasn=x is a 400 and revokes nothing', async (t) => {
  const { token, session } = await createSession(app, { userId: 'typo-id' })
  await assertRejectedUnchanged(t, 'DELETE', `/v1/sessions/${session.id}?reasn=password_change`)
  t.equal((await validate(app, token)).statusCode, 200, 'still valid')
})

// A body that passes validation for each route that takes one, so that the query string is what is judged.
const BODIES: Record<string, unknown> = {
  'POST /v1/sessions': { userId: 'walk' },
  'POST /v1/sessions/validate': { token: 'x' },
  'POST /v1/sessions/touch': { token: 'x' },
  'POST /v1/sessions/rotate': { token: 'x' },
  'POST /v1/sessions/revoke': { token: 'x' },
  'PATCH /v1/sessions/:id': { data: {} },
  'POST /console/api/session': { key: 'x' },
}

t.test('every route the app serves answers an unknown query parameter with 400 and changes nothing', async (t) => {
  const routes = routesOf(app).filter((route) => !route.startsWith('OPTIONS '))
  t.ok(routes.includes('GET /healthz') && routes.includes('DELETE /v1/admin/sessions'), `${routes.length} routes found`)
  const { session } = await createSession(app, { userId: 'walk' })
  for (const route of routes) {
    const [method, template] = route.split(' ')
    const url = template.replace(/:id\b/, session.id).replace(/:userId\b/, 'walk').replace(/:asset\b/, 'index.html')
    const body = BODIES[route]
    const before = await counts()
    const res = await call(app, {
      method: method as 'GET',
      url: `${url}?zz_unknown=1`,
      key: ADMIN_KEY,
      ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
    })
    t.equal(res.statusCode, 400, `${route}: ${res.statusCode} ${res.body.slice(0, 120)}`)
    if (method !== 'HEAD') t.match(res.json(), { error: { code: 'invalid_request', message: /^querystring must NOT have additional properties/ } }, `${route}: the query string is named`)
    t.same(await counts(), before, `${route}: nothing changed`)
  }
})

t.test('known query parameters still work', async (t) => {
  const kept = await createSession(app, { userId: 'known' })
  await createSession(app, { userId: 'known' })
  const res = await call(app, { method: 'DELETE', url: `/v1/users/known/sessions?except=${kept.session.id}&reason=password_change` })
  t.same(res.json(), { revoked: 1 })
})
