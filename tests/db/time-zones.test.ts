// Expiry follows the database clock whatever the time zone of the node or of the database session, DST included.
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { createDatabase, databaseUrl } from '../helpers/db.js'
import { ensureBuilt, freePort, startService, type Service } from '../support/process.js'

const APP_KEY = 'app-secret-0123456789abcdef'
const IDLE = 2
const ABSOLUTE = 3600
// 183 days of idle time always contain one New York DST change; 366 days of lifetime contain both.
const LONG_IDLE = 183 * 86400
const LONG_ABSOLUTE = 366 * 86400
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

interface Session {
  id: string
  createdAt: string
  lastSeenAt: string
  idleExpiresAt: string
  expiresAt: string
}

t.before(async () => {
  await ensureBuilt(t)
})

async function post(service: Service, url: string, body: unknown) {
  const res = await fetch(`${service.base}${url}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${APP_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

const ms = (iso: string) => new Date(iso).getTime()

function newYorkOffset(iso: string): string {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', timeZoneName: 'longOffset' }).formatToParts(new Date(iso))
  return parts.find((part) => part.type === 'timeZoneName')?.value ?? '?'
}

function checkWindows(t: Test, session: Session, idle: number, absolute: number, what: string) {
  for (const field of ['createdAt', 'lastSeenAt', 'idleExpiresAt', 'expiresAt'] as const) {
    t.match(session[field], RFC3339_UTC, `${what}: ${field} is RFC 3339 UTC with Z`)
  }
  t.equal(ms(session.idleExpiresAt) - ms(session.lastSeenAt), idle * 1000, `${what}: idleExpiresAt - lastSeenAt = ${idle} s exactly`)
  t.equal(ms(session.expiresAt) - ms(session.createdAt), absolute * 1000, `${what}: expiresAt - createdAt = ${absolute} s exactly`)
}

const COMBINATIONS = [
  { serviceTz: 'America/New_York', databaseTz: 'Asia/Kolkata' },
  { serviceTz: 'Asia/Kolkata', databaseTz: 'America/New_York' },
]

for (const { serviceTz, databaseTz } of COMBINATIONS) {
  t.test(`service TZ=${serviceTz}, database time zone ${databaseTz}`, async (t) => {
    const name = await createDatabase(t)
    const url = databaseUrl(name)
    const admin = postgres(url, { max: 1, onnotice: () => {} })
    // Applies to every new connection to this database, the service's included.
    await admin.unsafe(`alter database ${name} set timezone to '${databaseTz}'`)
    await admin.end()
    const sql = postgres(url, { max: 1, onnotice: () => {} })
    t.teardown(() => sql.end({ timeout: 5 }))
    const [{ TimeZone: zone }] = await sql`show timezone`
    t.equal(zone, databaseTz, 'new connections to the database use its time zone')

    const port = await freePort()
    const service = startService(t, {
      TZ: serviceTz,
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: url,
      API_KEYS: `app:${APP_KEY}`,
      LOG_LEVEL: 'warn',
      SESSION_IDLE_TIMEOUT: String(IDLE),
      SESSION_ABSOLUTE_TIMEOUT: String(ABSOLUTE),
      SESSION_TOUCH_INTERVAL: '0',
      SESSION_POLICIES: JSON.stringify({ long: { idleTimeout: LONG_IDLE, absoluteTimeout: LONG_ABSOLUTE } }),
    })
    await service.waitUntilServing()

    t.test('windows are exact and the session validates at once', async (t) => {
      const created = await post(service, '/v1/sessions', { userId: 'tz-user' })
      t.equal(created.status, 201, JSON.stringify(created.body))
      checkWindows(t, created.body.session, IDLE, ABSOLUTE, 'create')
      const [row] = await sql`select created_at, expires_at from sessions where id = ${created.body.session.id}`
      t.equal(row.created_at.getTime(), ms(created.body.session.createdAt), 'createdAt is the database value')

      const validated = await post(service, '/v1/sessions/validate', { token: created.body.token })
      t.equal(validated.status, 200, `validates at once: ${JSON.stringify(validated.body)}`)
      checkWindows(t, validated.body.session, IDLE, ABSOLUTE, 'validate')
    })

    t.test('idle timeout of 2 s judged by the database: 401 idle_timeout once aged 3 s', async (t) => {
      const created = await post(service, '/v1/sessions', { userId: 'tz-idle' })
      t.equal(created.status, 201)
      const fresh = await post(service, '/v1/sessions/validate', { token: created.body.token })
      t.equal(fresh.status, 200, 'valid at once')
      await sql`
        update sessions set
          last_seen_at = last_seen_at - make_interval(secs => 3),
          idle_expires_at = idle_expires_at - make_interval(secs => 3)
        where id = ${created.body.session.id}`
      const aged = await post(service, '/v1/sessions/validate', { token: created.body.token })
      t.equal(aged.status, 401, 'no longer valid after 3 s without activity')
      t.match(aged.body, { error: { code: 'session_invalid', reason: 'idle_timeout' } })
    })

    t.test('an idle window across a New York DST change is still exactly idleTimeout seconds', async (t) => {
      const created = await post(service, '/v1/sessions', { userId: 'tz-dst', policy: 'long' })
      t.equal(created.status, 201, JSON.stringify(created.body))
      const session: Session = created.body.session
      t.not(newYorkOffset(session.lastSeenAt), newYorkOffset(session.idleExpiresAt),
        `the idle window spans a DST change (${newYorkOffset(session.lastSeenAt)} → ${newYorkOffset(session.idleExpiresAt)})`)
      checkWindows(t, session, LONG_IDLE, LONG_ABSOLUTE, 'create')
      const touched = await post(service, '/v1/sessions/touch', { token: created.body.token })
      t.equal(touched.status, 200)
      checkWindows(t, touched.body.session, LONG_IDLE, LONG_ABSOLUTE, 'touch')
      const rotated = await post(service, '/v1/sessions/rotate', { token: created.body.token })
      t.equal(rotated.status, 200)
      checkWindows(t, rotated.body.session, LONG_IDLE, LONG_ABSOLUTE, 'rotate')
    })
  })
}
