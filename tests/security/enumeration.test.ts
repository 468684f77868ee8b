// No enumeration through validate: an unknown well-formed token, a malformed one and a near miss of a real token get
// byte-identical answers; revoked tokens answer their reason by contract (to the API-key holder). Latency medians are
// reported, not asserted: the machine is shared and noisy.
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { call, setup } from '../helpers/app.js'

const N = 2000

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}
const fmt = (xs: number[]) => `median ${(quantile(xs, 0.5) * 1000).toFixed(0)} µs, p90 ${(quantile(xs, 0.9) * 1000).toFixed(0)} µs`

// What an attacker sees of an answer: status, headers (but the date) and body.
function visible(res: LightMyRequestResponse): string {
  const headers = Object.entries(res.headers).filter(([name]) => name !== 'date').sort(([a], [b]) => a.localeCompare(b))
  return JSON.stringify([res.statusCode, headers, res.body])
}

function notFoundCount(metrics: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith('session_invalid_total{reason="not_found"}'))
  return line === undefined ? 0 : Number(line.split(' ').pop())
}

t.test(`validate: ${N} unknown, ${N} malformed, ${N} near-miss and ${N} revoked tokens`, async (t) => {
  const { app } = await setup(t)
  const active = await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'enum-active' } })
  const revokedIssued = await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'enum-revoked' } })
  const activeToken = (active.json() as { token: string }).token
  const revokedToken = (revokedIssued.json() as { token: string }).token
  t.equal((await call(app, { method: 'POST', url: '/v1/sessions/revoke', payload: { token: revokedToken } })).statusCode, 204)

  const flip = (c: string) => (c === 'A' ? 'B' : 'A')
  const malformedKinds = [
    (i: number) => 'A'.repeat(42 - (i % 3)),
    (i: number) => randomBytes(32).toString('base64').replace(/=+$/, '') + (i % 2 === 0 ? '+' : '/'),
    () => `${randomBytes(32).toString('base64url')}=`,
    () => randomBytes(40).toString('base64url'),
    () => '',
    () => `${randomBytes(31).toString('base64url')}\u00e9`,
  ]
  const kinds = {
    unknown: (_i: number) => randomBytes(32).toString('base64url'),
    malformed: (i: number) => malformedKinds[i % malformedKinds.length](i),
    // One character away from the live token, at the start or the end.
    nearMiss: (i: number) => (i % 2 === 0 ? flip(activeToken[0]) + activeToken.slice(1) : activeToken.slice(0, -1) + flip(activeToken[42])),
    revoked: (_i: number) => revokedToken,
  }
  const metricsBefore = notFoundCount((await app.inject({ method: 'GET', url: '/metrics' })).body)
  const times: Record<keyof typeof kinds, number[]> = { unknown: [], malformed: [], nearMiss: [], revoked: [] }
  const answers: Record<keyof typeof kinds, Set<string>> = { unknown: new Set(), malformed: new Set(), nearMiss: new Set(), revoked: new Set() }
  const order = Object.keys(kinds) as Array<keyof typeof kinds>
  // Interleaved, rotating which kind goes first, so drift in the machine's load spreads over all four.
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < order.length; k++) {
      const kind = order[(i + k) % order.length]
      const token = kinds[kind](i)
      const started = performance.now()
      const res = await call(app, { method: 'POST', url: '/v1/sessions/validate', payload: { token, touch: false } })
      times[kind].push(performance.now() - started)
      answers[kind].add(visible(res))
    }
  }
  const metricsAfter = notFoundCount((await app.inject({ method: 'GET', url: '/metrics' })).body)

  t.equal(answers.unknown.size, 1, `all ${N} unknown well-formed tokens got one and the same answer`)
  const [unknownAnswer] = answers.unknown
  const bodyOf = (answer: string) => JSON.parse((JSON.parse(answer) as [number, unknown, string])[2]) as unknown
  t.match(bodyOf(unknownAnswer), { error: { code: 'session_invalid', reason: 'not_found' } }, 'which is 401 session_invalid not_found')
  t.same([...answers.malformed], [unknownAnswer], `all ${N} malformed tokens got exactly that answer (status, headers, body)`)
  t.same([...answers.nearMiss], [unknownAnswer], `all ${N} near misses of a live token got exactly that answer`)
  t.equal(answers.revoked.size, 1, 'the revoked token always got the same answer')
  t.match(bodyOf([...answers.revoked][0]), { error: { code: 'session_invalid', reason: 'revoked', revokeReason: 'logout' } }, 'the contract tells the API-key holder why: revoked/logout')
  t.equal(metricsAfter - metricsBefore, 3 * N, `session_invalid_total{reason="not_found"} rose by exactly ${3 * N}: guessing is visible`)

  t.comment(`validate timing over ${N} each (in-process, touch:false): unknown well-formed ${fmt(times.unknown)}; known revoked ${fmt(times.revoked)}; ` +
    `near miss of a live token ${fmt(times.nearMiss)}; malformed ${fmt(times.malformed)} (no query: faster, which tells the sender only what it already knows)`)
})

t.test('revoke and GET /v1/auth: unknown, malformed, near-miss and revoked tokens are indistinguishable where the contract says so', async (t) => {
  const { app } = await setup(t)
  const issued = (await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'enum-2' } })).json() as { token: string }
  const gone = (await call(app, { method: 'POST', url: '/v1/sessions', payload: { userId: 'enum-2' } })).json() as { token: string }
  await call(app, { method: 'POST', url: '/v1/sessions/revoke', payload: { token: gone.token } })
  const unknown = randomBytes(32).toString('base64url')
  const nearMiss = (issued.token[0] === 'A' ? 'B' : 'A') + issued.token.slice(1)
  const revokeAnswers = new Set<string>()
  for (const token of [unknown, 'malformed!', nearMiss, gone.token, '', 'x'.repeat(5000)]) {
    revokeAnswers.add(visible(await call(app, { method: 'POST', url: '/v1/sessions/revoke', payload: { token } })))
  }
  t.equal(revokeAnswers.size, 1, 'logout answers the same 204 with the clearing cookie for unknown, malformed, near-miss and already revoked tokens')
  const authAnswers = new Set<string>()
  for (const token of [unknown, 'malformed!', nearMiss, '']) {
    authAnswers.add(visible(await call(app, { method: 'GET', url: '/v1/auth', headers: { cookie: `sid=${encodeURIComponent(token)}` } })))
  }
  t.equal(authAnswers.size, 1, 'GET /v1/auth answers unknown, malformed, near-miss and missing tokens alike')
  const stillValid = await call(app, { method: 'POST', url: '/v1/sessions/validate', payload: { token: issued.token } })
  t.equal(stillValid.statusCode, 200, 'the near misses did not disturb the live session')
})
