// Inputs that passed validation and then failed below it (500): non-finite numbers, times JavaScript or Postgres cannot
// hold, cursors past a bigint. Each is now a 400 that changes nothing, and the nearest valid value still works.
import t from 'tap'
import { ADMIN_KEY, call, setup } from '../helpers/app.js'
import { createSession } from '../helpers/sessions.js'

const { app, sql } = await setup(t)
await createSession(app, { userId: 'boundaries' })

const cursor = (key: string) => Buffer.from(key, 'utf8').toString('base64url')

async function counts() {
  const [row] = await sql<{ active: number; events: number }[]>`
    select (select count(*)::int from sessions where revoked_at is null) as active, (select count(*)::int from audit_events) as events`
  return row
}

const REFUSED: Array<[string, string]> = [
  ['GET', '/v1/admin/sessions?limit=Infinity'],
  ['GET', '/v1/admin/sessions?limit=-Infinity'],
  ['GET', '/v1/admin/sessions?limit=1e309'],
  ['GET', '/v1/admin/sessions?limit=-0'],
  ['GET', '/v1/admin/sessions?idleFor=Infinity'],
  ['GET', '/v1/admin/sessions?idleFor=1e309'],
  ['GET', '/v1/admin/sessions?idleFor=NaN'],
  ['GET', '/v1/admin/events?limit=Infinity'],
  ['GET', '/v1/revocations?wait=Infinity'],
  ['GET', '/v1/revocations?since=0&wait=1e309'],
  ['GET', `/v1/admin/events?cursor=${cursor('e:9999999999999999999')}`],
  ['GET', `/v1/admin/events?cursor=${cursor('e:9223372036854775808')}`],
  ['GET', '/v1/admin/events?since=2016-12-31T23:59:60Z'],
  ['GET', '/v1/admin/events?since=0000-01-01T00:00:00Z'],
  ['GET', '/v1/admin/events?since=0001-01-01T00:00:00%2B01:00'],
  ['GET', '/v1/admin/events?since=9999-12-31T23:59:59-01:00'],
  ['GET', '/v1/admin/events?since=10000-01-01T00:00:00Z'],
  ['DELETE', '/v1/admin/sessions?createdBefore=2016-12-31T23:59:60Z'],
  ['DELETE', '/v1/admin/sessions?createdBefore=0000-01-01T00:00:00Z'],
  ['DELETE', '/v1/admin/sessions?createdBefore=9999-12-31T23:59:59-14:00'],
]

for (const [method, url] of REFUSED) {
  t.test(`${method} ${url} is a 400 that changes nothing`, async (t) => {
    const before = await counts()
    const res = await call(app, { method: method as 'GET', url, key: ADMIN_KEY })
    t.equal(res.statusCode, 400, res.body)
    t.match(res.json(), { error: { code: 'invalid_request', message: /^querystring\// } })
    t.same(await counts(), before)
  })
}

const WORKS: Array<[string, string]> = [
  ['GET', '/v1/admin/sessions?limit=1e3'],
  ['GET', '/v1/admin/sessions?idleFor=315360000'],
  ['GET', `/v1/admin/events?cursor=${cursor('e:9223372036854775807')}`],
  ['GET', '/v1/admin/events?since=0001-01-01T00:00:00Z'],
  ['GET', '/v1/admin/events?since=9999-12-31T23:59:59.999Z'],
  ['GET', '/v1/admin/events?since=2016-12-31T23:59:59.999999999Z'],
  ['GET', '/v1/admin/events?since=2020-01-01T00:00:00%2B23:59'],
  ['GET', '/v1/admin/events?since=2020-01-01t00:00:00z'],
  ['GET', '/v1/revocations?since=9223372036854775807&wait=0'],
  ['DELETE', '/v1/admin/sessions?createdBefore=0001-01-01T00:00:00Z'],
]

for (const [method, url] of WORKS) {
  t.test(`${method} ${url} works`, async (t) => {
    const res = await call(app, { method: method as 'GET', url, key: ADMIN_KEY })
    t.ok(res.statusCode < 500 && res.statusCode !== 400, `${res.statusCode} ${res.body.slice(0, 200)}`)
  })
}
