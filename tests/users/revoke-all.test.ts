// DELETE /v1/users/{userId}/sessions?except=&reason=: end a user's sessions (but one), e.g. on a password change.
import t from 'tap'
import { call, setup } from '../helpers/app.js'
import { validate } from '../helpers/sessions.js'
import { assertError, assertSessionInvalid, issue } from '../sessions/_support.js'

const { app } = await setup(t)

const revokeAll = (userId: string, query = '') => call(app, { method: 'DELETE', url: `/v1/users/${encodeURIComponent(userId)}/sessions${query}` })

async function five(userId: string) {
  const issued = []
  for (let i = 0; i < 5; i++) issued.push(await issue(app, { userId }))
  return issued
}

t.test('revoke all: 5 sessions with except and reason=password_change → {revoked: 4}', async (t) => {
  const [kept] = await five('ra-count')
  const res = await revokeAll('ra-count', `?except=${kept.session.id}&reason=password_change`)
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), { revoked: 4 })
})

t.test('revoke all: the revoked sessions answer 401 revoked/password_change', async (t) => {
  const [kept, ...others] = await five('ra-reason')
  await revokeAll('ra-reason', `?except=${kept.session.id}&reason=password_change`)
  for (const { token } of others) assertSessionInvalid(t, await validate(app, token), 'revoked', 'password_change')
})

t.test('revoke all: the excepted session still validates', async (t) => {
  const [kept] = await five('ra-kept')
  await revokeAll('ra-kept', `?except=${kept.session.id}&reason=password_change`)
  t.equal((await validate(app, kept.token)).statusCode, 200)
})

t.test('revoke all: without reason the revokeReason is admin', async (t) => {
  const issued = await five('ra-default')
  t.same((await revokeAll('ra-default')).json(), { revoked: 5 })
  for (const { token } of issued) assertSessionInvalid(t, await validate(app, token), 'revoked', 'admin')
})

t.test('revoke all: other users are untouched', async (t) => {
  const bystanders = [await issue(app, { userId: 'ra-bystander' }), await issue(app, { userId: 'ra-target-x' })]
  await five('ra-target')
  t.same((await revokeAll('ra-target')).json(), { revoked: 5 })
  for (const { token } of bystanders) t.equal((await validate(app, token)).statusCode, 200)
})

t.test('revoke all: already revoked sessions are not counted again', async (t) => {
  await five('ra-again')
  await revokeAll('ra-again', '?reason=first')
  t.same((await revokeAll('ra-again', '?reason=second')).json(), { revoked: 0 })
})

t.test('revoke all: a userId with unicode and spaces works', async (t) => {
  const issued = await issue(app, { userId: 'Zoë Müller 42/x' })
  t.same((await revokeAll('Zoë Müller 42/x')).json(), { revoked: 1 })
  assertSessionInvalid(t, await validate(app, issued.token), 'revoked', 'admin')
})

t.test('revoke all: a reason with a control character is a 400 and revokes nothing', async (t) => {
  const [one] = await five('ra-badreason')
  assertError(t, await revokeAll('ra-badreason', '?reason=a%01b'), 400, 'invalid_request')
  t.equal((await validate(app, one.token)).statusCode, 200)
})
