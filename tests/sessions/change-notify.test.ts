// "A session changed" comes from one trigger on sessions: any statement that revokes, ends, rotates or changes the data
// of a session notifies on commit, even one written without the service's help; a touch does not.
import postgres from 'postgres'
import t from 'tap'
import { CHANGES_CHANNEL } from '../../src/sessions/change-feed.js'
import { touch as touchRow } from '../../src/sessions/store.js'
import { freshDatabase, insertLiveSessions } from '../helpers/db.js'

t.test('every change of what validate returns notifies once it commits; a touch and a rolled-back change do not', async (t) => {
  const { url, sql } = await freshDatabase(t)
  t.teardown(() => sql.end({ timeout: 5 }))
  await insertLiveSessions(sql, 1, 8)
  const ids = Array.from({ length: 8 }, (_, i) => `s_${(i + 1).toString(16).toUpperCase().padStart(26, '0')}`)
  const heard: string[] = []
  const listener = postgres(url, { max: 1, onnotice: () => {} })
  t.teardown(() => listener.end({ timeout: 5 }))
  await listener.listen(CHANGES_CHANNEL, (payload) => heard.push(payload))
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300))

  await touchRow(sql, ids[0])
  await sql`update sessions set last_seen_at = now(), idle_expires_at = now() + interval '1 hour' where id = ${ids[1]}`
  await settle()
  t.same(heard, [], 'touches notify nothing')

  await sql`update sessions set revoked_at = now(), revoke_reason = 'hand' where id = ${ids[2]}`
  await sql`update sessions set data = '{"a":1}', version = version + 1 where id = ${ids[3]}`
  await sql`update sessions set token_hash = sha256('other'::bytea) where id = ${ids[4]}`
  await sql`update sessions set expires_at = now() where id = ${ids[5]}`
  await sql.begin(async (tx) => {
    await tx`update sessions set revoked_at = now(), revoke_reason = 'hand' where id = ${ids[6]}`
    await tx`select 1/0`
  }).catch(() => undefined)
  await settle()
  t.same([...heard].sort(), [ids[2], ids[3], ids[4], ids[5]].sort(), 'revoke, data, rotation and a new deadline notified; the rolled-back revoke did not')
})
