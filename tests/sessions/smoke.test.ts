import t from 'tap'
import { setup } from '../helpers/app.js'
import { createSession, rotate, validate } from '../helpers/sessions.js'

t.test('rotate: the old token stops working at once', async (t) => {
  const { app } = await setup(t)
  const { token } = await createSession(app, { userId: '42' })
  const rotated = await rotate(app, token)
  t.equal(rotated.statusCode, 200, rotated.body)
  const res = await validate(app, token)
  t.equal(res.statusCode, 401)
  t.match(res.json(), { error: { reason: 'revoked', revokeReason: 'rotated' } })
  const fresh = await validate(app, rotated.json().token)
  t.equal(fresh.statusCode, 200, fresh.body)
})
