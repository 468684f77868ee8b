// loadConfig: the contract's defaults, one clear ConfigError per bad variable, and the cross-field cookie and access rules.
import path from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

const KEY = 'app:0123456789abcdef-secret'

// Throws unless loadConfig rejects env with a one-line ConfigError whose message starts with the variable's name.
function expectRejected(t: Test, env: Record<string, string>, variable: string): void {
  let caught: unknown
  try {
    loadConfig(env)
  } catch (err) {
    caught = err
  }
  t.ok(caught instanceof ConfigError, `${JSON.stringify(env)} throws a ConfigError (got ${String(caught)})`)
  if (!(caught instanceof ConfigError)) return
  t.ok(caught.message.startsWith(`${variable} `), `message starts with ${variable}: ${JSON.stringify(caught.message)}`)
  t.notOk(caught.message.includes('\n'), 'message is one line')
}

t.test('defaults match the contract configuration table', async (t) => {
  const config = loadConfig({})
  t.equal(config.host, '127.0.0.1')
  t.equal(config.port, 8080)
  t.equal(config.databaseUrl, undefined, 'DATABASE_URL unset means the embedded database')
  t.equal(config.dataDir, path.resolve('./.data'))
  t.same(config.apiKeys, [])
  const policy = config.policies.get('default')
  t.same(policy, { name: 'default', idleTimeout: 7200, absoluteTimeout: 604800, maxPerUser: 0, onLimit: 'evict_oldest' })
  t.same([...config.policies.keys()], ['default'], 'SESSION_POLICIES defaults to {}')
  t.equal(config.touchInterval, 60)
  t.equal(config.retention, 2592000)
  t.equal(config.pruneCron, '*/15 * * * *')
  t.same(config.cookie, { name: 'sid', domain: undefined, path: '/', secure: true, sameSite: 'lax' })
  t.equal(config.logLevel, 'info')
  t.equal(config.migrate, true)
  t.equal(config.databaseQueueMax, 500, 'DATABASE_QUEUE_MAX defaults to 500 waiting requests')
  t.equal(config.databaseQueueTimeoutMs, 2000, 'DATABASE_QUEUE_TIMEOUT_MS defaults to 2 s')
  t.ok(Object.isFrozen(config), 'the config is frozen')
})

t.test('valid values are read into the config', async (t) => {
  const config = loadConfig({
    HOST: '0.0.0.0',
    PORT: '9090',
    DATABASE_URL: 'postgres://u@db.example:5432/sessions',
    API_KEYS: `${KEY},web:fedcba9876543210-secret`,
    ADMIN_API_KEYS: 'ops:ops-0123456789abcdef',
    SESSION_IDLE_TIMEOUT: '900',
    SESSION_ABSOLUTE_TIMEOUT: '28800',
    SESSION_MAX_PER_USER: '3',
    SESSION_ON_LIMIT: 'reject',
    SESSION_POLICIES: '{"finance":{"idleTimeout":600,"absoluteTimeout":3600,"maxPerUser":1,"onLimit":"evict_oldest"}}',
    SESSION_TOUCH_INTERVAL: '0',
    SESSION_RETENTION: '86400',
    PRUNE_CRON: '0 * * * *',
    COOKIE_NAME: '__Host-sid',
    COOKIE_PATH: '/',
    COOKIE_SECURE: 'true',
    COOKIE_SAMESITE: 'none',
    LOG_LEVEL: 'warn',
    MIGRATE: 'false',
  })
  t.equal(config.port, 9090)
  t.equal(config.databaseUrl, 'postgres://u@db.example:5432/sessions')
  t.same(config.apiKeys.map((k) => [k.name, k.scope]), [['app', 'sessions'], ['web', 'sessions'], ['ops', 'admin']])
  t.same(config.policies.get('default'), { name: 'default', idleTimeout: 900, absoluteTimeout: 28800, maxPerUser: 3, onLimit: 'reject' })
  t.same(config.policies.get('finance'), { name: 'finance', idleTimeout: 600, absoluteTimeout: 3600, maxPerUser: 1, onLimit: 'evict_oldest' })
  t.equal(config.touchInterval, 0)
  t.equal(config.retention, 86400)
  t.equal(config.pruneCron, '0 * * * *')
  t.same(config.cookie, { name: '__Host-sid', domain: undefined, path: '/', secure: true, sameSite: 'none' })
  t.equal(config.logLevel, 'warn')
  t.equal(config.migrate, false)
})

// One (or a few) invalid values per variable of the contract table, plus the service's own DATABASE_POOL_MAX, MIGRATE, EMBEDDED_DB_PORT.
// HOST and DATA_DIR take any string (an unusable one fails at listen or start), so they have no invalid value here.
const INVALID: Array<[variable: string, values: string[]]> = [
  ['PORT', ['abc', '65536', '-1', '80.5']],
  ['DATABASE_URL', ['not a url', 'mysql://u@localhost/db']],
  ['API_KEYS', ['app:short', 'no-separator-0123456789abcdef', ':0123456789abcdef-secret', 'app:0123456789 abcdef-secret']],
  ['ADMIN_API_KEYS', ['ops:short', 'o p:0123456789abcdef-secret']],
  ['SESSION_IDLE_TIMEOUT', ['0', 'abc', '1.5', '-60']],
  ['SESSION_ABSOLUTE_TIMEOUT', ['0', '1e6', 'week']],
  ['SESSION_MAX_PER_USER', ['-1', 'many']],
  ['SESSION_ON_LIMIT', ['drop', 'EVICT_OLDEST']],
  ['SESSION_TOUCH_INTERVAL', ['-1', 'often']],
  ['SESSION_CACHE_TTL', ['-1', '301', 'short']],
  ['SESSION_CACHE_MAX_ENTRIES', ['0', 'many']],
  ['SESSION_RETENTION', ['-5', '30d']],
  ['PRUNE_CRON', ['not a cron', '* * *', '61 * * * *']],
  ['COOKIE_NAME', ['s id', 'sid;x', 'sid=1', 'ä']],
  ['COOKIE_DOMAIN', ['exa mple.com', 'http://example.com', 'example.com;x=1']],
  ['COOKIE_PATH', ['app', '/a;b', '/a b']],
  ['COOKIE_SECURE', ['yes', 'TRUE']],
  ['COOKIE_SAMESITE', ['sometimes', 'Lax']],
  ['LOG_LEVEL', ['verbose', 'INFO']],
  ['DATABASE_POOL_MAX', ['0', 'ten']],
  ['MIGRATE', ['maybe']],
  ['EMBEDDED_DB_PORT', ['0', '70000', 'x']],
  ['DATABASE_QUEUE_MAX', ['-1', '100001', 'lots', '1.5']],
  ['DATABASE_QUEUE_TIMEOUT_MS', ['-1', '600001', '2s', '1e3']],
]

t.test('one invalid value per variable throws a ConfigError naming it', async (t) => {
  for (const [variable, values] of INVALID) {
    t.test(variable, async (t) => {
      for (const value of values) expectRejected(t, { [variable]: value }, variable)
    })
  }
})

t.test('SESSION_POLICIES: each broken policy document names SESSION_POLICIES', async (t) => {
  const cases: Record<string, string> = {
    'bad JSON': 'not-json',
    'not an object': '["finance"]',
    'policy not an object': '{"finance":3}',
    'unknown field': '{"finance":{"idleTimeout":900,"idle":900}}',
    'bad onLimit': '{"finance":{"onLimit":"drop"}}',
    'negative idle timeout': '{"finance":{"idleTimeout":-1}}',
    'negative absolute timeout': '{"finance":{"absoluteTimeout":-1}}',
    'fractional timeout': '{"finance":{"idleTimeout":1.5}}',
    'timeout as a string': '{"finance":{"idleTimeout":"900"}}',
    'negative maxPerUser': '{"finance":{"maxPerUser":-1}}',
    'redefining default': '{"default":{"idleTimeout":60}}',
    'bad policy name': '{"fin ance":{}}',
  }
  for (const [name, value] of Object.entries(cases)) {
    t.test(name, async (t) => expectRejected(t, { SESSION_POLICIES: value }, 'SESSION_POLICIES'))
  }
})

t.test('cross-field cookie rules', async (t) => {
  t.test('SameSite=None needs Secure', async (t) => {
    let caught: unknown
    try {
      loadConfig({ COOKIE_SAMESITE: 'none', COOKIE_SECURE: 'false' })
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof ConfigError, 'COOKIE_SAMESITE=none with COOKIE_SECURE=false is refused')
    const message = (caught as Error | undefined)?.message ?? ''
    t.match(message, /^(COOKIE_SAMESITE|COOKIE_SECURE) /, 'names one of the two variables first')
    t.match(message, /COOKIE_SECURE/, 'and says COOKIE_SECURE is involved')
    t.doesNotThrow(() => loadConfig({ COOKIE_SAMESITE: 'none', COOKIE_SECURE: 'true' }), 'None with Secure is fine')
  })
  t.test('__Host- needs Secure, no Domain and Path=/', async (t) => {
    expectRejected(t, { COOKIE_NAME: '__Host-sid', COOKIE_SECURE: 'false' }, 'COOKIE_NAME')
    expectRejected(t, { COOKIE_NAME: '__Host-sid', COOKIE_DOMAIN: 'example.com' }, 'COOKIE_NAME')
    expectRejected(t, { COOKIE_NAME: '__Host-sid', COOKIE_PATH: '/app' }, 'COOKIE_NAME')
    t.same(loadConfig({ COOKIE_NAME: '__Host-sid' }).cookie, { name: '__Host-sid', domain: undefined, path: '/', secure: true, sameSite: 'lax' })
  })
  t.test('__Secure- needs Secure', async (t) => {
    expectRejected(t, { COOKIE_NAME: '__Secure-sid', COOKIE_SECURE: 'false' }, 'COOKIE_NAME')
    t.equal(loadConfig({ COOKIE_NAME: '__Secure-sid', COOKIE_DOMAIN: 'example.com', COOKIE_PATH: '/app' }).cookie.domain, 'example.com')
  })
})

t.test('open access (no API keys) is allowed on loopback only', async (t) => {
  expectRejected(t, { HOST: '0.0.0.0' }, 'API_KEYS')
  expectRejected(t, { HOST: '192.0.2.10' }, 'API_KEYS')
  t.same(loadConfig({ HOST: '127.0.0.1' }).apiKeys, [], 'HOST=127.0.0.1 without keys is accepted')
  t.doesNotThrow(() => loadConfig({ HOST: '0.0.0.0', API_KEYS: KEY, DATABASE_URL: 'postgres://db/sessions' }), 'HOST=0.0.0.0 with a key is accepted')
  t.doesNotThrow(() => loadConfig({ HOST: '0.0.0.0', ADMIN_API_KEYS: KEY, DATABASE_URL: 'postgres://db/sessions' }), 'an admin key alone also counts')
})

t.test('DATABASE_QUEUE_MAX and DATABASE_QUEUE_TIMEOUT_MS are read, 0 meaning no waiting', async (t) => {
  const config = loadConfig({ DATABASE_QUEUE_MAX: '0', DATABASE_QUEUE_TIMEOUT_MS: '0' })
  t.equal(config.databaseQueueMax, 0)
  t.equal(config.databaseQueueTimeoutMs, 0)
  const other = loadConfig({ DATABASE_QUEUE_MAX: '25', DATABASE_QUEUE_TIMEOUT_MS: '750' })
  t.equal(other.databaseQueueMax, 25)
  t.equal(other.databaseQueueTimeoutMs, 750)
})

t.test('duplicate key names or secrets are refused', async (t) => {
  expectRejected(t, { API_KEYS: `${KEY},app:another-0123456789abcdef` }, 'API_KEYS')
  expectRejected(t, { API_KEYS: KEY, ADMIN_API_KEYS: 'ops:0123456789abcdef-secret' }, 'ADMIN_API_KEYS')
})
