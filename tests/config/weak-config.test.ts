// Configuration that cannot work is refused at start with one line naming the variable; configuration that works but is
// weak is accepted with one warning line each; a node that lost DATABASE_URL in production never starts a private database.
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { connect } from '../../src/db.js'
import { loggerOptions } from '../../src/logger.js'
import { buildServer } from '../../src/server.js'
import { databaseUrl, createDatabase } from '../helpers/db.js'
import { ensureBuilt, startService } from '../support/process.js'

const KEY = 'app:0123456789abcdef-secret'
const DB = 'postgres://db.example/sessions'

function rejected(t: Test, env: Record<string, string>, variable: string, pattern: RegExp): void {
  let caught: unknown
  try {
    loadConfig(env)
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof ConfigError, `${JSON.stringify(env).slice(0, 200)} is refused (got ${String(caught)})`)
  const message = (caught as Error | undefined)?.message ?? ''
  t.ok(message.startsWith(`${variable} `), `the line starts with ${variable}: ${message}`)
  t.notOk(message.includes('\n'), 'one line')
  t.match(message, pattern)
}

t.test('an idle timeout not longer than SESSION_TOUCH_INTERVAL is refused: active users would be signed out', async (t) => {
  rejected(t, { SESSION_IDLE_TIMEOUT: '60' }, 'SESSION_IDLE_TIMEOUT', /longer than SESSION_TOUCH_INTERVAL \(60\)/)
  rejected(t, { SESSION_IDLE_TIMEOUT: '300', SESSION_TOUCH_INTERVAL: '600' }, 'SESSION_IDLE_TIMEOUT', /SESSION_TOUCH_INTERVAL \(600\)/)
  rejected(t, { SESSION_POLICIES: '{"kiosk":{"idleTimeout":20}}' }, 'SESSION_POLICIES', /policy "kiosk" idleTimeout \(20\) must be longer than SESSION_TOUCH_INTERVAL/)
  t.doesNotThrow(() => loadConfig({ SESSION_IDLE_TIMEOUT: '20', SESSION_TOUCH_INTERVAL: '0' }), 'with SESSION_TOUCH_INTERVAL=0 every validate records activity')
  t.same(loadConfig({ SESSION_POLICIES: '{"kiosk":{"idleTimeout":120}}' }).warnings, [], 'twice the interval: no warning')
})

t.test('an idle timeout under twice SESSION_TOUCH_INTERVAL is accepted with one warning', async (t) => {
  const config = loadConfig({ SESSION_POLICIES: '{"kiosk":{"idleTimeout":90}}' })
  t.equal(config.warnings.length, 1)
  t.match(config.warnings[0], /^SESSION_POLICIES policy "kiosk" idleTimeout \(90\) is less than twice SESSION_TOUCH_INTERVAL \(60\): a user who pauses for more than 30 s/)
})

t.test('API key secrets that are placeholders or that no Bearer header can carry are refused', async (t) => {
  rejected(t, { API_KEYS: `app:${'a'.repeat(32)}` }, 'API_KEYS', /one repeated character/)
  rejected(t, { ADMIN_API_KEYS: `ops:${'x'.repeat(16)}` }, 'ADMIN_API_KEYS', /one repeated character/)
  rejected(t, { API_KEYS: 'app:0123456789abcdéf-secret' }, 'API_KEYS', /characters a Bearer header cannot carry/)
  rejected(t, { API_KEYS: 'app:0123456789abcdef\u0007secret' }, 'API_KEYS', /characters a Bearer header cannot carry/)
  rejected(t, { API_KEYS: 'app:0123456789abcdef\u007fsecret' }, 'API_KEYS', /characters a Bearer header cannot carry/)
  rejected(t, { API_KEYS: 'app:0123456789 abcdef-secret' }, 'API_KEYS', /without spaces/)
  rejected(t, { API_KEYS: 'app:short' }, 'API_KEYS', /at least 16/)
  rejected(t, { API_KEYS: `app:${'ab'.repeat(257)}` }, 'API_KEYS', /longer than 512/)
  t.equal(loadConfig({ API_KEYS: `app:${'ab'.repeat(256)}` }).apiKeys[0].secret.length, 512, '512 characters are accepted')
  t.doesNotThrow(() => loadConfig({ API_KEYS: KEY }))
})

t.test('COOKIE_SECURE=false on a non-loopback HOST is accepted with a warning', async (t) => {
  const exposed = loadConfig({ HOST: '0.0.0.0', API_KEYS: KEY, DATABASE_URL: DB, COOKIE_SECURE: 'false' })
  t.equal(exposed.warnings.length, 1)
  t.match(exposed.warnings[0], /^COOKIE_SECURE=false with HOST=0\.0\.0\.0: /)
  t.same(loadConfig({ HOST: '127.0.0.1', COOKIE_SECURE: 'false' }).warnings, [], 'on loopback (development) no warning')
  t.same(loadConfig({ HOST: '0.0.0.0', API_KEYS: KEY, DATABASE_URL: DB }).warnings, [], 'Secure cookies: no warning')
})

t.test('each warning is one warn-level line when the server starts', async (t) => {
  const name = await createDatabase(t)
  const url = databaseUrl(name)
  const config = loadConfig({ HOST: '0.0.0.0', API_KEYS: KEY, DATABASE_URL: url, COOKIE_SECURE: 'false', SESSION_POLICIES: '{"kiosk":{"idleTimeout":90}}' })
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const app = await buildServer({ config, sql: connect(url, config), cron: false, loggerInstance: pino(loggerOptions(config) as pino.LoggerOptions, stream) })
  t.teardown(() => app.close())
  await app.ready()
  const warnings = lines.filter((line) => line.level === 40).map((line) => String(line.msg))
  t.equal(warnings.filter((msg) => msg.startsWith('COOKIE_SECURE=false')).length, 1, JSON.stringify(warnings))
  t.equal(warnings.filter((msg) => msg.startsWith('SESSION_POLICIES policy "kiosk"')).length, 1)
})

t.test('without DATABASE_URL the embedded database is refused where it cannot be meant', async (t) => {
  rejected(t, { NODE_ENV: 'production' }, 'DATABASE_URL', /is unset: with NODE_ENV=production .*EMBEDDED_DB=true/)
  rejected(t, { HOST: '0.0.0.0', API_KEYS: KEY }, 'DATABASE_URL', /is unset: with HOST=0\.0\.0\.0 /)
  rejected(t, { EMBEDDED_DB: 'false' }, 'DATABASE_URL', /EMBEDDED_DB=false/)
  rejected(t, { EMBEDDED_DB: 'true', DATABASE_URL: DB }, 'EMBEDDED_DB', /DATABASE_URL is set too/)
  rejected(t, { EMBEDDED_DB: 'maybe' }, 'EMBEDDED_DB', /true or false/)
  t.equal(loadConfig({}).databaseUrl, undefined, "the newcomer's npm start (loopback, no NODE_ENV) keeps the embedded database")
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'production', EMBEDDED_DB: 'true' }), 'asked for explicitly')
  t.doesNotThrow(() => loadConfig({ HOST: '0.0.0.0', API_KEYS: KEY, EMBEDDED_DB: 'true' }), 'asked for explicitly')
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'production', DATABASE_URL: DB }))
})

t.test('a production process without DATABASE_URL exits at once with one line naming it, and starts no database', async (t) => {
  await ensureBuilt(t)
  const dataDir = path.join(os.tmpdir(), `no-embedded-${process.pid}-${Date.now()}`)
  const service = startService(t, { NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', DATA_DIR: dataDir, EMBEDDED_DB_PORT: '16871' })
  const exit = await service.waitForExit(15_000)
  t.ok(exit !== undefined && exit.code !== 0, `exits non-zero (got ${JSON.stringify(exit)})`)
  const lines = service.stderr().split('\n').filter((line) => line !== '')
  t.equal(lines.length, 1, `one line: ${service.stderr()}`)
  t.match(lines[0], /^invalid configuration: DATABASE_URL is unset/)
  t.notOk(existsSync(dataDir), 'no embedded database directory was created')
})
