// Writes to one session racing each other over real connections, many rounds each: PATCH with and without If-Match,
// rotation of one token, and rotation racing logout (which ends the session whichever commits first). Each round checks
// the rows and events, not just the answers.
import t from 'tap'
import { listening } from './_support.js'

const PATCH_ROUNDS = 8
const ROTATE_ROUNDS = 15
const ROTATE_LOGOUT_ROUNDS = 20

t.test('races on one session', async (t) => {
  const { send, sql } = await listening(t)
  const create = async (userId: string) => {
    const res = await send('POST', '/v1/sessions', { userId, data: { base: true } })
    if (res.status !== 201) throw new Error(`create: ${res.status}`)
    return res.json as { token: string; session: { id: string } }
  }
  const eventCount = async (id: string, type: string) =>
    (await sql<{ n: number }[]>`select count(*)::int as n from audit_events where session_id = ${id} and type = ${type}`)[0].n

  t.test(`20 parallel PATCHes without If-Match, ${PATCH_ROUNDS} rounds: no update is lost`, async (t) => {
    const problems: string[] = []
    for (let round = 0; round < PATCH_ROUNDS; round++) {
      const { session } = await create(`patch-free-${round}`)
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => send('PATCH', `/v1/sessions/${session.id}`, { data: { [`k${i}`]: i } })))
      const codes = answers.map((a) => a.status)
      if (codes.some((code) => code !== 200)) problems.push(`round ${round}: statuses ${codes.join(',')}`)
      const [row] = await sql<{ data: Record<string, unknown>; version: number }[]>`select data, version from sessions where id = ${session.id}`
      const missing = Array.from({ length: 20 }, (_, i) => `k${i}`).filter((key) => row.data[key] === undefined)
      if (missing.length > 0 || row.data.base !== true) problems.push(`round ${round}: lost keys ${missing.join(',')}`)
      if (row.version !== 21) problems.push(`round ${round}: version ${row.version}, expected 21`)
      const updates = await eventCount(session.id, 'data_updated')
      if (updates !== 20) problems.push(`round ${round}: ${updates} data_updated events`)
      const versions = answers.map((a) => a.json.session.version as number).sort((a, b) => a - b)
      if (versions.join() !== Array.from({ length: 20 }, (_, i) => i + 2).join()) problems.push(`round ${round}: answered versions ${versions.join(',')}`)
    }
    t.same(problems, [], 'every round: 20 × 200, all 20 keys kept, version 21, 20 events, each answer a distinct version 2…21')
  })

  t.test(`10 PATCHes with If-Match "1" racing 10 without, ${PATCH_ROUNDS} rounds: at most one conditional wins, nothing half-applied`, async (t) => {
    const problems: string[] = []
    let conditionalWins = 0
    for (let round = 0; round < PATCH_ROUNDS; round++) {
      const { session } = await create(`patch-mixed-${round}`)
      const requests = Array.from({ length: 20 }, (_, i) => (i % 2 === 0
        ? send('PATCH', `/v1/sessions/${session.id}`, { data: { [`c${i}`]: i } }, { 'if-match': '"1"' })
        : send('PATCH', `/v1/sessions/${session.id}`, { data: { [`u${i}`]: i } })))
      const answers = await Promise.all(requests)
      const wins = answers.filter((a, i) => i % 2 === 0 && a.status === 200).length
      conditionalWins += wins
      const [row] = await sql<{ data: Record<string, unknown>; version: number }[]>`select data, version from sessions where id = ${session.id}`
      answers.forEach((a, i) => {
        const key = i % 2 === 0 ? `c${i}` : `u${i}`
        if (i % 2 === 1 && a.status !== 200) problems.push(`round ${round}: unconditional PATCH answered ${a.status}`)
        if (i % 2 === 0 && a.status !== 200 && a.status !== 412) problems.push(`round ${round}: conditional PATCH answered ${a.status}`)
        if (a.status === 412 && a.json.error.code !== 'version_conflict') problems.push(`round ${round}: 412 without version_conflict`)
        if ((a.status === 200) !== (row.data[key] !== undefined)) problems.push(`round ${round}: ${key} answered ${a.status} but ${row.data[key] === undefined ? 'absent' : 'present'}`)
      })
      if (wins > 1) problems.push(`round ${round}: ${wins} conditional PATCHes on version 1 succeeded`)
      if (row.version !== 1 + 10 + wins) problems.push(`round ${round}: version ${row.version}, expected ${11 + wins}`)
      const updates = await eventCount(session.id, 'data_updated')
      if (updates !== 10 + wins) problems.push(`round ${round}: ${updates} data_updated events, expected ${10 + wins}`)
    }
    t.same(problems, [], 'every round: unconditional ones all applied, conditional ones applied exactly when answered 200, version and events agree')
    t.comment(`PATCH If-Match race: a conditional PATCH on version 1 won ${conditionalWins} of ${PATCH_ROUNDS} rounds (an unconditional one got there first in the others)`)
  })

  t.test(`10 parallel rotations of one token, ${ROTATE_ROUNDS} rounds: exactly one new token, one event, the old one refused`, async (t) => {
    const problems: string[] = []
    for (let round = 0; round < ROTATE_ROUNDS; round++) {
      const { token, session } = await create(`rotate-${round}`)
      const answers = await Promise.all(Array.from({ length: 10 }, () => send('POST', '/v1/sessions/rotate', { token })))
      const won = answers.filter((a) => a.status === 200)
      const lost = answers.filter((a) => a.status !== 200)
      if (won.length !== 1) { problems.push(`round ${round}: ${won.length} rotations succeeded`); continue }
      if (lost.some((a) => a.status !== 401 || a.json.error.reason !== 'revoked' || a.json.error.revokeReason !== 'rotated')) {
        problems.push(`round ${round}: losers answered ${lost.map((a) => `${a.status}/${a.json?.error?.revokeReason}`).join(',')}`)
      }
      const fresh = await send('POST', '/v1/sessions/validate', { token: won[0].json.token, touch: false })
      const old = await send('POST', '/v1/sessions/validate', { token, touch: false })
      if (fresh.status !== 200 || fresh.json.session.id !== session.id) problems.push(`round ${round}: the new token answered ${fresh.status}`)
      if (old.status !== 401) problems.push(`round ${round}: the old token answered ${old.status}`)
      const rotated = await eventCount(session.id, 'rotated')
      if (rotated !== 1) problems.push(`round ${round}: ${rotated} rotated events`)
    }
    t.same(problems, [], 'every round: one 200, nine 401 revoked/rotated, the new token validates, the old does not, one rotated event')
  })

  t.test(`rotate racing logout of the same token, ${ROTATE_LOGOUT_ROUNDS} rounds: the logout always ends the session`, async (t) => {
    const problems: string[] = []
    let logoutFirst = 0
    let rotateFirst = 0
    for (let round = 0; round < ROTATE_LOGOUT_ROUNDS; round++) {
      const { token, session } = await create(`rotate-logout-${round}`)
      const [rotated, revoked] = await Promise.all([
        send('POST', '/v1/sessions/rotate', { token }),
        send('POST', '/v1/sessions/revoke', { token }),
      ])
      if (revoked.status !== 204) problems.push(`round ${round}: logout answered ${revoked.status}`)
      const [row] = await sql<{ revoke_reason: string | null }[]>`select revoke_reason from sessions where id = ${session.id}`
      const ends = await eventCount(session.id, 'revoked')
      const rotations = await eventCount(session.id, 'rotated')
      if (row.revoke_reason !== 'logout' || ends !== 1) problems.push(`round ${round}: revoke_reason=${row.revoke_reason}, ${ends} revoked events`)
      if (rotated.status === 200) {
        // The rotation committed first: the logout, sent with the token it replaced moments ago, still ends the session,
        // so the new token is refused too.
        rotateFirst++
        const fresh = await send('POST', '/v1/sessions/validate', { token: rotated.json.token, touch: false })
        if (rotations !== 1 || fresh.status !== 401 || fresh.json.error.revokeReason !== 'logout') {
          problems.push(`round ${round}: rotate won but ${rotations} rotated events, new token ${fresh.status}/${fresh.json?.error?.revokeReason}`)
        }
      } else {
        logoutFirst++
        if (rotated.status !== 401 || rotated.json.error.reason !== 'revoked' || rotated.json.error.revokeReason !== 'logout' || rotations !== 0) {
          problems.push(`round ${round}: logout won but rotate answered ${rotated.status}, ${rotations} rotated events`)
        }
      }
    }
    t.same(problems, [], 'each round ends revoked by the logout with one revoked event; a rotation that got in first changes nothing about that')
    t.comment(`rotate vs logout race: logout first in ${logoutFirst} rounds, rotation first in ${rotateFirst} (the logout then ends the session through the replaced token)`)
  })
})
