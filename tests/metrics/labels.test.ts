// Metric label values come from bounded sets: caller text (revoke reasons, unknown paths, query strings) never becomes a series.
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import { createSession } from '../helpers/sessions.js'

async function metricsText(app: Parameters<typeof call>[0]): Promise<string> {
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  return res.body
}

function revokedSeries(text: string): string[] {
  return text.split('\n').filter((line) => line.startsWith('sessions_revoked_total{'))
}

t.test('many distinct revoke reasons and unknown paths leave /metrics small', async (t) => {
  const { app } = await setup(t)
  // Warm up every route the loop uses once, so the baseline already holds their series.
  await call(app, { method: 'DELETE', url: '/v1/users/nobody/sessions?reason=warm' })
  await call(app, { method: 'GET', url: '/v1/no-such-route' })
  const before = (await metricsText(app)).length
  for (let i = 0; i < 500; i += 1) {
    await call(app, { method: 'DELETE', url: `/v1/users/nobody/sessions?reason=r${i}-${'x'.repeat(40)}` })
    await call(app, { method: 'GET', url: `/v1/no-such-route-${i}` })
  }
  const after = await metricsText(app)
  t.ok(after.length - before < 4096, `metrics grew by ${after.length - before} bytes (from ${before})`)
  t.notMatch(after, /r\d+-x{40}/, 'no reason text in any label')
  t.notMatch(after, /no-such-route-\d/, 'no unknown path in any label')
})

t.test('sessions_revoked_total counts what was revoked, by a known reason or "other"', async (t) => {
  const { app } = await setup(t)
  const a = await createSession(app, { userId: 'u1' })
  await createSession(app, { userId: 'u1' })
  const b = await createSession(app, { userId: 'u2' })
  t.equal((await call(app, { method: 'DELETE', url: '/v1/users/u1/sessions?reason=password_change' })).statusCode, 200)
  t.equal((await call(app, { method: 'DELETE', url: `/v1/sessions/${b.session.id}?reason=${encodeURIComponent('my own words')}` })).statusCode, 204)
  // Nothing left to revoke: no count, no new series.
  t.equal((await call(app, { method: 'DELETE', url: '/v1/users/u1/sessions?reason=logout' })).statusCode, 200)
  t.equal((await call(app, { method: 'DELETE', url: `/v1/sessions/${a.session.id}?reason=admin` })).statusCode, 204)
  const series = revokedSeries(await metricsText(app)).sort()
  t.same(series, ['sessions_revoked_total{reason="other"} 1', 'sessions_revoked_total{reason="password_change"} 2'])
})
