// contract: error bodies never echo input. Caller text placed where each validation keyword would report it (an unknown
// property for additionalProperties, a value outside an enum, a pattern or a format, a number out of bounds) never comes back.
import t from 'tap'
import { ADMIN_KEY, call, setup } from '../helpers/app.js'
import { createSession } from '../helpers/sessions.js'

const { app } = await setup(t)
const { session } = await createSession(app, { userId: 'echo' })
const MARK = 'Echo7Marker'

const CASES: Array<{ what: string; method: 'GET' | 'POST' | 'PATCH' | 'DELETE'; url: string; payload?: unknown; keyword: string }> = [
  { what: 'unknown body property', method: 'POST', url: '/v1/sessions', payload: { userId: 'u', [MARK]: 1 }, keyword: 'additionalProperties' },
  { what: 'unknown body property named like a token field', method: 'POST', url: '/v1/sessions/validate', payload: { token: 'x', [`${MARK}token`]: MARK }, keyword: 'additionalProperties' },
  { what: 'unknown query parameter', method: 'DELETE', url: `/v1/admin/sessions?policy=default&${MARK}=1`, keyword: 'additionalProperties' },
  { what: 'unknown query parameter on a route without any', method: 'GET', url: `/v1/admin/stats?${MARK}=1`, keyword: 'additionalProperties' },
  { what: 'enum', method: 'GET', url: `/v1/admin/sessions?state=${MARK}`, keyword: 'enum' },
  { what: 'pattern', method: 'POST', url: '/v1/sessions', payload: { userId: `${MARK}\u0000` }, keyword: 'pattern' },
  { what: 'pattern in the query', method: 'GET', url: `/v1/admin/sessions?cursor=${MARK}!`, keyword: 'pattern' },
  { what: 'format', method: 'GET', url: `/v1/admin/events?since=${MARK}`, keyword: 'format' },
  { what: 'type', method: 'GET', url: `/v1/admin/sessions?limit=${MARK}`, keyword: 'type' },
  { what: 'maximum', method: 'GET', url: '/v1/admin/sessions?limit=1001', keyword: 'maximum' },
  { what: 'type in the body', method: 'PATCH', url: `/v1/sessions/${session.id}`, payload: { data: MARK }, keyword: 'type' },
  { what: 'maxLength', method: 'POST', url: '/v1/sessions', payload: { userId: MARK.repeat(30) }, keyword: 'maxLength' },
]

for (const { what, method, url, payload, keyword } of CASES) {
  t.test(`${what}: 400 with keyword ${keyword}, and the caller's text is not in the body`, async (t) => {
    const res = await call(app, { method, url, key: ADMIN_KEY, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) })
    t.equal(res.statusCode, 400, res.body)
    const { error } = res.json() as { error: { code: string; message: string; details: Array<Record<string, unknown>> } }
    t.equal(error.code, 'invalid_request')
    t.equal(error.details[0]?.keyword, keyword, res.body)
    t.notOk(res.body.toLowerCase().includes(MARK.toLowerCase()), `the body does not echo the marker: ${res.body}`)
  })
}

t.test('an unknown property: the details name the accepted properties instead', async (t) => {
  const res = await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'u', [MARK]: 1 } })
  t.match(res.json(), { error: { details: [{ path: '', keyword: 'additionalProperties', allowed: ['userId', 'data', 'policy', 'ip', 'userAgent'] }] } })
  const query = await call(app, { method: 'GET', url: `/healthz?${MARK}=1` })
  t.match(query.json(), { error: { message: 'querystring must NOT have additional properties', details: [{ allowed: [] }] } })
})
