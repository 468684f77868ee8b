// A handler that the database gate gave up on (503 sent) and that settles later: its own reply.send is dropped quietly,
// never a second answer, an "already sent" error or an unhandled rejection.
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import pino from 'pino'
import t from 'tap'
import { createDbGate } from '../../src/db-gate.js'
import { createErrorHandler } from '../../src/errors.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('the gate timed a handler out: its late reply.send neither answers again nor logs an error', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown) => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

  const gate = createDbGate({ slots: 2, queueMax: 1, queueTimeoutMs: 50, settleTimeoutMs: 150 })
  const app = Fastify({ loggerInstance: pino({ level: 'debug' }, stream) })
  app.setErrorHandler(createErrorHandler(() => {}))
  app.addHook('onRoute', (route) => gate.wrap(route))
  let finish: () => void = () => {}
  const stuck = new Promise<void>((resolve) => { finish = resolve })
  // As GET /v1/auth and the create route do: headers, a status and reply.send of their own once the database answers.
  app.get('/sends', async (_req, reply) => {
    await stuck
    return reply.header('x-late', '1').code(201).send({ late: true })
  })
  // As most routes do: a value returned.
  app.get('/returns', async () => {
    await stuck
    return { late: true }
  })
  t.teardown(() => app.close())

  const [sends, returns] = await Promise.all([app.inject({ method: 'GET', url: '/sends' }), app.inject({ method: 'GET', url: '/returns' })])
  for (const res of [sends, returns]) {
    t.equal(res.statusCode, 503, res.body)
    t.equal(res.json().error.code, 'unavailable')
    t.equal(res.headers['x-late'], undefined)
  }
  const before = lines.length
  finish()
  await sleep(100)
  t.equal(gate.running, 0, 'both slots are free once the handlers settle')
  const late = lines.slice(before).filter((line) => Number(line.level) >= 40)
  t.same(late.map((line) => line.msg), [], 'nothing logged at warn or above after the handlers settled')
  t.same(unhandled, [], 'no unhandled rejection')
})
