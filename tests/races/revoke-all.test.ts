// Revoke-all racing a stream of creates for the same user: no session acknowledged before the revoke-all was sent
// survives it, and the count it answers matches the sessions and events it wrote.
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { listening, sleep } from './_support.js'

const ROUNDS = 20
const CREATORS = 4

t.test(`revoke-all with concurrent creates, ${ROUNDS} rounds: every session created before it started is revoked`, async (t) => {
  const { send, sql } = await listening(t)
  const problems: string[] = []
  let caught = 0
  let survived = 0
  let before = 0

  for (let round = 0; round < ROUNDS; round++) {
    const userId = `race-user-${round}`
    const created: Array<{ id: string; ackedAt: number }> = []
    let stop = false
    const creators = Array.from({ length: CREATORS }, async () => {
      for (let i = 0; !stop && i < 200; i++) {
        const res = await send('POST', '/v1/sessions', { userId })
        if (res.status !== 201) problems.push(`round ${round}: create answered ${res.status}`)
        else created.push({ id: res.json.session.id, ackedAt: performance.now() })
      }
    })
    // Let a few creates land (at least one, however busy the machine), then revoke while the creators keep going.
    for (let i = 0; i < 200 && created.length === 0; i++) await sleep(5)
    await sleep(10 + (round % 5) * 10)
    const sentAt = performance.now()
    const revokeAll = await send('DELETE', `/v1/users/${encodeURIComponent(userId)}/sessions?reason=password_change`)
    stop = true
    await Promise.all(creators)
    if (revokeAll.status !== 200) {
      problems.push(`round ${round}: revoke-all answered ${revokeAll.status}`)
      continue
    }

    const rows = await sql<{ id: string; revoke_reason: string | null }[]>`select id, revoke_reason from sessions where user_id = ${userId}`
    const reason = new Map(rows.map((row) => [row.id, row.revoke_reason]))
    const ackedBefore = created.filter((c) => c.ackedAt < sentAt)
    before += ackedBefore.length
    for (const { id } of ackedBefore) {
      if (reason.get(id) !== 'password_change') problems.push(`round ${round}: ${id}, acknowledged before the revoke-all was sent, is ${reason.get(id) ?? 'active'}`)
    }
    const revokedRows = rows.filter((row) => row.revoke_reason === 'password_change').length
    const [{ events }] = await sql<{ events: number }[]>`
      select count(*)::int as events from audit_events where user_id = ${userId} and type = 'revoked' and reason = 'password_change'`
    if (revokeAll.json.revoked !== revokedRows || events !== revokedRows) {
      problems.push(`round ${round}: answered revoked=${revokeAll.json.revoked}, ${revokedRows} rows revoked, ${events} events`)
    }
    const racing = created.filter((c) => c.ackedAt >= sentAt)
    caught += racing.filter((c) => reason.get(c.id) === 'password_change').length
    survived += racing.filter((c) => reason.get(c.id) === null).length
  }

  t.same(problems, [], `${before} sessions acknowledged before a revoke-all were all revoked; counts match rows and events`)
  t.ok(before >= ROUNDS, 'each round had sessions to revoke')
  t.comment(`revoke-all race: ${ROUNDS} rounds × ${CREATORS} concurrent creators; ${before} sessions acknowledged before the revoke-all (all revoked); ` +
    `of the creates answered after it was sent, ${caught} were still caught by it and ${survived} committed after it (legitimately active)`)
})
