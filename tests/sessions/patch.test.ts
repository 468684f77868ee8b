// PATCH /v1/sessions/{id}: RFC 7396 merge of data, versioning with If-Match, the 16 KiB limit, and only active sessions.
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { revoke } from '../helpers/sessions.js'
import { UNKNOWN_SESSION_ID, assertError, dataOfBytes, events, issue, patch, row } from './_support.js'

const { app, sql } = await setup(t, { SESSION_POLICIES: JSON.stringify({ brief: { idleTimeout: 7200, absoluteTimeout: 3600 } }) })

const base = { lang: 'en_US', prefs: { theme: 'dark', font: { size: 12, family: 'mono' } }, companies: [1, 3], keep: true }

t.test('patch: 200 with the merged session', async (t) => {
  const { session } = await issue(app, { userId: 'p-200', data: base })
  const res = await patch(app, session.id, { lang: 'de_DE' })
  t.equal(res.statusCode, 200, res.body)
  t.same(Object.keys(res.json()), ['session'])
  t.same(res.json().session.data, { ...base, lang: 'de_DE' })
})

t.test('patch: nested objects merge', async (t) => {
  const { session } = await issue(app, { userId: 'p-nested', data: base })
  const res = await patch(app, session.id, { prefs: { font: { size: 14 } } })
  t.same(res.json().session.data.prefs, { theme: 'dark', font: { size: 14, family: 'mono' } })
})

t.test('patch: null deletes a member', async (t) => {
  const { session } = await issue(app, { userId: 'p-null', data: base })
  const res = await patch(app, session.id, { keep: null, prefs: { font: { family: null } } })
  t.same(res.json().session.data, { lang: 'en_US', prefs: { theme: 'dark', font: { size: 12 } }, companies: [1, 3] })
})

t.test('patch: arrays replace, never merge', async (t) => {
  const { session } = await issue(app, { userId: 'p-array', data: base })
  const res = await patch(app, session.id, { companies: [7] })
  t.same(res.json().session.data.companies, [7])
})

t.test('patch: an object replaces a scalar and a scalar replaces an object', async (t) => {
  const { session } = await issue(app, { userId: 'p-kind', data: base })
  const res = await patch(app, session.id, { lang: { primary: 'en' }, prefs: 'none' })
  t.same(res.json().session.data, { ...base, lang: { primary: 'en' }, prefs: 'none' })
})

t.test('patch: the merged data is stored', async (t) => {
  const { session } = await issue(app, { userId: 'p-stored', data: base })
  await patch(app, session.id, { lang: 'fr' })
  t.same((await row(sql, session.id))?.data, { ...base, lang: 'fr' })
})

t.test('patch: a change bumps version by one and the ETag follows', async (t) => {
  const { session } = await issue(app, { userId: 'p-version', data: base })
  const first = await patch(app, session.id, { lang: 'fr' })
  t.equal(first.json().session.version, 2)
  t.equal(first.headers.etag, '"2"')
  t.equal((await patch(app, session.id, { lang: 'it' })).json().session.version, 3)
})

t.test('patch: a no-op patch leaves version unchanged and writes no data_updated event', async (t) => {
  const { session } = await issue(app, { userId: 'p-noop', data: base })
  for (const noop of [{}, { lang: 'en_US' }, { missing: null }, { prefs: { font: { size: 12 } } }, { companies: [1, 3] }]) {
    const res = await patch(app, session.id, noop)
    t.equal(res.statusCode, 200, JSON.stringify(noop))
    t.equal(res.json().session.version, 1, `version after ${JSON.stringify(noop)}`)
  }
  t.equal((await row(sql, session.id))?.version, 1)
  t.equal((await events(sql, session.id)).filter((e) => e.type === 'data_updated').length, 0)
})

t.test('patch: a change writes exactly one data_updated event', async (t) => {
  const { session } = await issue(app, { userId: 'p-event', data: base })
  await patch(app, session.id, { lang: 'fr' })
  t.equal((await events(sql, session.id)).filter((e) => e.type === 'data_updated').length, 1)
})

t.test('patch: If-Match with the current version applies', async (t) => {
  const { session } = await issue(app, { userId: 'p-ifmatch', data: base })
  const res = await patch(app, session.id, { lang: 'fr' }, '"1"')
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().session.version, 2)
})

t.test('patch: If-Match with another version is 412 version_conflict with currentVersion', async (t) => {
  const { session } = await issue(app, { userId: 'p-412', data: base })
  const res = await patch(app, session.id, { lang: 'fr' }, '"2"')
  assertError(t, res, 412, 'version_conflict', { currentVersion: 1 })
  const stored = await row(sql, session.id)
  t.equal(stored?.version, 1)
  t.same(stored?.data, base)
})

t.test('patch: a malformed If-Match is a 400', async (t) => {
  const { session } = await issue(app, { userId: 'p-badifmatch', data: base })
  for (const ifMatch of ['abc', '"1', '1', '"1", 2']) {
    assertError(t, await patch(app, session.id, { lang: 'fr' }, ifMatch), 400, 'invalid_request')
  }
  t.equal((await row(sql, session.id))?.version, 1)
})

t.test('patch: a well-formed If-Match that names no current strong version is 412 (RFC 9110)', async (t) => {
  const { session } = await issue(app, { userId: 'p-etags', data: base })
  for (const ifMatch of ['"0"', '"-1"', '"1.5"', 'W/"1"', '"2", "3"']) {
    assertError(t, await patch(app, session.id, { lang: 'fr' }, ifMatch), 412, 'version_conflict', { currentVersion: 1 })
  }
  t.equal((await row(sql, session.id))?.version, 1)
  const listed = await patch(app, session.id, { lang: 'fr' }, '"7", "1"')
  t.equal(listed.statusCode, 200, 'a list containing the current version matches')
  t.equal((await row(sql, session.id))?.version, 2)
})

t.test('patch: 10 parallel patches with the same If-Match give one 200 and nine 412', async (t) => {
  const { session } = await issue(app, { userId: 'p-race', data: base })
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => patch(app, session.id, { n: i }, '"1"')))
  const statuses = results.map((res) => res.statusCode)
  t.equal(statuses.filter((s) => s === 200).length, 1, `statuses ${statuses.join(',')}`)
  t.equal(statuses.filter((s) => s === 412).length, 9)
  t.equal((await row(sql, session.id))?.version, 2)
})

t.test('patch: growing data past 16 KiB is a 413 and changes nothing', async (t) => {
  const { session } = await issue(app, { userId: 'p-413', data: dataOfBytes(16000) })
  const res = await patch(app, session.id, { more: 'x'.repeat(400) })
  assertError(t, res, 413, 'payload_too_large')
  const stored = await row(sql, session.id)
  t.equal(stored?.version, 1)
  t.same(stored?.data, dataOfBytes(16000))
  t.equal((await events(sql, session.id)).filter((e) => e.type === 'data_updated').length, 0)
})

t.test('patch: a result of exactly 16384 bytes is accepted', async (t) => {
  const { session } = await issue(app, { userId: 'p-16k', data: { s: '' } })
  const res = await patch(app, session.id, dataOfBytes(16384))
  t.equal(res.statusCode, 200, res.body.slice(0, 300))
})

t.test('patch: a patch containing NUL is a 400', async (t) => {
  const { session } = await issue(app, { userId: 'p-nul', data: base })
  const res = await call(app, { method: 'PATCH', url: `/v1/sessions/${session.id}`, payload: '{"data":{"a":"\\u0000"}}', headers: { 'content-type': 'application/json' } })
  assertError(t, res, 400, 'invalid_request')
})

t.test('patch: data that is not an object is a 400', async (t) => {
  const { session } = await issue(app, { userId: 'p-type', data: base })
  for (const data of [null, [1], 'x']) assertError(t, await patch(app, session.id, data), 400, 'invalid_request')
  t.equal((await row(sql, session.id))?.version, 1)
})

t.test('patch: a revoked session is 404', async (t) => {
  const { token, session } = await issue(app, { userId: 'p-revoked', data: base })
  await revoke(app, token)
  assertError(t, await patch(app, session.id, { lang: 'fr' }), 404, 'not_found')
  t.same((await row(sql, session.id))?.data, base)
})

t.test('patch: an expired session is 404', async (t) => {
  const { session } = await issue(app, { userId: 'p-expired', policy: 'brief', data: base })
  await ageSession(sql, session.id, { seconds: 3601 })
  assertError(t, await patch(app, session.id, { lang: 'fr' }), 404, 'not_found')
})

t.test('patch: an idle session is 404', async (t) => {
  const { session } = await issue(app, { userId: 'p-idle', data: base })
  await ageSession(sql, session.id, { seconds: 7201 })
  assertError(t, await patch(app, session.id, { lang: 'fr' }), 404, 'not_found')
})

t.test('patch: an unknown id is 404', async (t) => {
  assertError(t, await patch(app, UNKNOWN_SESSION_ID, { lang: 'fr' }), 404, 'not_found')
})
