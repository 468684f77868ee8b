// A real service process doing creates, rotations, data changes and revocations under load is killed with SIGKILL,
// twice: the database then holds no half-done lifecycle change, and every acknowledged one is there.
import { createHash } from 'node:crypto'
import postgres from 'postgres'
import t from 'tap'
import { createDatabase, databaseUrl } from '../helpers/db.js'
import { startServing, type Service } from '../support/process.js'

const KEY = 'app-secret-0123456789abcdef'
const HEADERS = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }
const WORKERS = 8
const ROUNDS = 2
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex')

// What the test was told (2xx) about one session; each session belongs to one worker, so its operations never overlap.
interface Known {
  id: string
  userId: string
  token: string
  version: number
  revoked: boolean
}

t.test('kill -9 under load, twice: no half-written session or event, nothing acknowledged lost', async (t) => {
  const name = await createDatabase(t)
  const url = databaseUrl(name)
  const sql = postgres(url, { max: 2, onnotice: () => {}, connection: { application_name: 'kill-9-test' } })
  t.teardown(() => sql.end({ timeout: 5 }))

  const known = new Map<string, Known>()
  const revokedAll: Array<{ userId: string; before: string[] }> = []
  const figures: string[] = []
  let acked = 0

  for (let round = 1; round <= ROUNDS; round++) {
    // evict_oldest at 3 per user: creates also revoke (limit_evicted) inside their transaction.
    const service: Service = await startServing(t, {
      DATABASE_URL: url, API_KEYS: `app:${KEY}`, LOG_LEVEL: 'warn', SESSION_MAX_PER_USER: '3',
    })
    let inFlight = 0
    let alive = true
    const send = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any } | undefined> => {
      inFlight++
      try {
        const res = await fetch(`${service.base}${path}`, {
          method,
          headers: body === undefined ? { authorization: HEADERS.authorization } : HEADERS,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        })
        const text = await res.text()
        if (res.status >= 200 && res.status < 300) acked++
        return { status: res.status, json: text === '' ? null : JSON.parse(text) }
      } catch {
        alive = false // the process is gone
        return undefined
      } finally {
        inFlight--
      }
    }

    const worker = async (w: number) => {
      const userId = `r${round}-w${w}`
      const mine: Known[] = []
      const active = () => mine.filter((k) => !k.revoked)
      for (let step = 0; alive && step < 100_000; step++) {
        const pick = active()[step % Math.max(1, active().length)]
        const roll = step % 10
        if (pick === undefined || roll < 3) {
          const res = await send('POST', '/v1/sessions', { userId, data: { step } })
          if (res?.status !== 201) continue
          const k: Known = { id: res.json.session.id, userId, token: res.json.token, version: 1, revoked: false }
          known.set(k.id, k)
          mine.push(k)
          // The service evicted the least recently seen beyond 3: learn which from the user's list.
          if (active().length > 3) {
            const list = await send('GET', `/v1/users/${userId}/sessions`)
            if (list?.status !== 200) continue
            const ids = new Set((list.json.sessions as Array<{ id: string }>).map((s) => s.id))
            for (const other of active()) if (!ids.has(other.id)) other.revoked = true
          }
        } else if (roll < 5) {
          const res = await send('POST', '/v1/sessions/rotate', { token: pick.token })
          if (res?.status === 200) pick.token = res.json.token
        } else if (roll < 8) {
          const res = await send('PATCH', `/v1/sessions/${pick.id}`, { data: { step, [`k${step % 5}`]: step } })
          if (res?.status === 200) pick.version = res.json.session.version
        } else if (roll < 9) {
          const res = await send('POST', '/v1/sessions/revoke', { token: pick.token })
          if (res?.status === 204) pick.revoked = true
        } else if (step % 20 === 9) {
          const before = active().map((k) => k.id)
          const res = await send('DELETE', `/v1/users/${userId}/sessions?reason=password_change`)
          if (res?.status === 200) {
            for (const k of active()) k.revoked = true
            revokedAll.push({ userId, before })
          }
        } else {
          await send('DELETE', `/v1/sessions/${pick.id}?reason=admin`).then((res) => { if (res?.status === 204) pick.revoked = true })
        }
      }
    }

    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w))
    // Kill once the load is steady: at least 300 acknowledged writes this round, or 3 s.
    const ackedBefore = acked
    for (let i = 0; i < 60 && acked - ackedBefore < 300; i++) await sleep(50)
    const [{ open }] = await sql<{ open: number }[]>`
      select count(*)::int as open from pg_stat_activity
       where datname = ${name} and application_name = 'session-service' and xact_start is not null`
    const inFlightAtKill = inFlight
    service.child.kill('SIGKILL')
    const exit = await service.exited
    await Promise.all(workers)
    t.equal(exit.signal, 'SIGKILL', `round ${round}: the service was killed with SIGKILL`)
    figures.push(`round ${round}: ${inFlightAtKill} requests in flight, ${open} service backends inside a transaction just before the kill`)

    // Postgres rolls back the transactions of a client that vanished; wait until its backends are gone.
    let left = -1
    for (let i = 0; i < 200 && left !== 0; i++) {
      if (i > 0) await sleep(50)
      ;[{ left }] = await sql<{ left: number }[]>`
        select count(*)::int as left from pg_stat_activity where datname = ${name} and application_name = 'session-service'`
    }
    t.equal(left, 0, `round ${round}: the killed service's backends are gone`)
  }

  const [{ sessions, events }] = await sql<{ sessions: number; events: number }[]>`
    select (select count(*)::int from sessions) as sessions, (select count(*)::int from audit_events) as events`
  t.ok(sessions > 50 && events > sessions, `there is data to check: ${sessions} sessions, ${events} events`)

  t.test('every session row has exactly one created event', async (t) => {
    const bad = await sql`
      select s.id, count(e.id)::int as n from sessions s left join audit_events e on e.session_id = s.id and e.type = 'created'
       group by s.id having count(e.id) <> 1`
    t.same(bad, [])
  })

  t.test('every rotated-away token has its rotated event: per session, as many events as rotated_tokens rows', async (t) => {
    const bad = await sql`
      select s.id,
             (select count(*)::int from rotated_tokens r where r.session_id = s.id) as tokens,
             (select count(*)::int from audit_events e where e.session_id = s.id and e.type = 'rotated') as events
        from sessions s
       where (select count(*) from rotated_tokens r where r.session_id = s.id)
          <> (select count(*) from audit_events e where e.session_id = s.id and e.type = 'rotated')`
    t.same(bad, [])
  })

  t.test('every revoked session has exactly one revoked or limit_evicted event with its reason; active ones have none', async (t) => {
    const bad = await sql`
      select s.id, s.revoke_reason, array_agg(e.type || ':' || coalesce(e.reason, '')) filter (where e.id is not null) as ends
        from sessions s left join audit_events e on e.session_id = s.id and e.type in ('revoked', 'limit_evicted')
       group by s.id
      having count(e.id) <> (case when s.revoked_at is null then 0 else 1 end)
          or bool_or(e.reason is distinct from s.revoke_reason)
          or bool_or((e.type = 'limit_evicted') <> (s.revoke_reason = 'session_limit'))`
    t.same(bad, [])
  })

  t.test('version = data_updated events + 1 for every session', async (t) => {
    const bad = await sql`
      select s.id, s.version, count(e.id)::int as updates from sessions s
        left join audit_events e on e.session_id = s.id and e.type = 'data_updated'
       group by s.id, s.version having s.version <> count(e.id) + 1`
    t.same(bad, [])
  })

  t.test('no orphan events: every event belongs to a session row', async (t) => {
    const bad = await sql`select e.id, e.type, e.session_id from audit_events e where not exists (select 1 from sessions s where s.id = e.session_id)`
    t.same(bad, [])
  })

  await t.test('every acknowledged change is in the database', async (t) => {
    const rows = await sql<{ id: string; token_hash: Buffer; version: number; revoked: boolean; rotated: string[] }[]>`
      select s.id, s.token_hash, s.version, s.revoked_at is not null as revoked,
             coalesce((select array_agg(encode(r.token_hash, 'hex')) from rotated_tokens r where r.session_id = s.id), '{}') as rotated
        from sessions s`
    const byId = new Map(rows.map((row) => [row.id, row]))
    const problems: string[] = []
    for (const k of known.values()) {
      const row = byId.get(k.id)
      if (row === undefined) { problems.push(`${k.id}: acknowledged create missing`); continue }
      const hash = sha256(k.token)
      // A later rotation whose answer was lost with the process may have replaced the last acknowledged token.
      if (row.token_hash.toString('hex') !== hash && !row.rotated.includes(hash)) problems.push(`${k.id}: last acknowledged token unknown`)
      if (row.version < k.version) problems.push(`${k.id}: version ${row.version} below the acknowledged ${k.version}`)
      if (k.revoked && !row.revoked) problems.push(`${k.id}: acknowledged revocation lost`)
    }
    for (const { userId, before } of revokedAll) {
      for (const id of before) if (!byId.get(id)?.revoked) problems.push(`${id}: survived the acknowledged revoke-all of ${userId}`)
    }
    t.same(problems, [], `${known.size} acknowledged sessions and ${revokedAll.length} revoke-alls checked`)
    const unacknowledged = rows.filter((row) => !known.has(row.id)).length
    figures.push(`${unacknowledged} sessions committed whose 201 was lost with the process`)
  })

  t.comment(`kill -9: ${ROUNDS} rounds of ${WORKERS} workers, ${acked} acknowledged writes and reads; ${figures.join('; ')}; ${sessions} sessions and ${events} events checked`)
})
