// Reads and validates the environment once into a frozen Config; the only module that reads process.env.
import path from 'node:path'
import { CronTime } from 'cron'
import type { LevelWithSilent } from 'pino'

export type OnLimit = 'evict_oldest' | 'reject'
export type SameSite = 'lax' | 'strict' | 'none'

export interface Policy {
  readonly name: string
  readonly idleTimeout: number
  readonly absoluteTimeout: number
  readonly maxPerUser: number
  readonly onLimit: OnLimit
}

export interface ApiKeyConfig {
  readonly name: string
  readonly secret: string
  readonly scope: 'sessions' | 'admin'
}

export interface CookieConfig {
  readonly name: string
  readonly domain: string | undefined
  readonly path: string
  readonly secure: boolean
  readonly sameSite: SameSite
}

// The operator console's sessions: a built-in policy of their own, never one an app can create sessions under.
export interface ConsoleConfig {
  readonly idleTimeout: number
  readonly absoluteTimeout: number
}

export interface Config {
  readonly host: string
  readonly port: number
  readonly databaseUrl: string | undefined
  readonly dataDir: string
  readonly embeddedDbPort: number
  readonly databasePoolMax: number
  readonly databaseConnectTimeout: number
  readonly databaseStatementTimeoutMs: number
  readonly databaseQueueMax: number
  readonly databaseQueueTimeoutMs: number
  readonly migrate: boolean
  readonly apiKeys: readonly ApiKeyConfig[]
  readonly policies: ReadonlyMap<string, Policy>
  readonly touchInterval: number
  readonly cacheTtl: number
  readonly cacheMaxEntries: number
  readonly retention: number
  readonly pruneCron: string
  readonly cookie: CookieConfig
  readonly console: ConsoleConfig
  readonly logLevel: LevelWithSilent
  readonly http: HttpLimits
  // Settings that work but are weak; each one line, logged at warn when the server starts.
  readonly warnings: readonly string[]
}

// How long and how many clients may hold this node's sockets (see README "Limits and timeouts").
export interface HttpLimits {
  // From a request's first byte to the end of its headers, and to the end of its body.
  readonly headersTimeoutMs: number
  readonly requestTimeoutMs: number
  // An idle kept-alive socket between requests.
  readonly keepAliveTimeoutMs: number
  // Open sockets at once; one more is closed as it connects.
  readonly maxConnections: number
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000
// Above the idle timeout of common load balancers (nginx 60 s, AWS ALB 60 s), so the balancer closes idle sockets first.
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 72_000
export const DEFAULT_MAX_CONNECTIONS = 10_000

export class ConfigError extends Error {}

const MAX_SECONDS = 10 * 365 * 24 * 3600
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
const ON_LIMIT = ['evict_oldest', 'reject'] as const
const SAME_SITE = ['lax', 'strict', 'none'] as const
const POLICY_NAME = /^[A-Za-z0-9_.-]{1,64}$/
const KEY_NAME = /^[A-Za-z0-9_.-]{1,64}$/
const MIN_SECRET_LENGTH = 16
const MAX_SECRET_LENGTH = 512
// RFC 6265 cookie-name token characters
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

type Env = Record<string, string | undefined>

function fail(variable: string, problem: string, got?: string): never {
  const shown = got === undefined ? '' : ` (got ${JSON.stringify(got)})`
  throw new ConfigError(`${variable} ${problem}${shown}`)
}

function readString(env: Env, variable: string, fallback: string): string {
  const value = env[variable]
  return value === undefined || value === '' ? fallback : value
}

function readInteger(env: Env, variable: string, fallback: number, min: number, max: number): number {
  const raw = env[variable]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw.trim())) fail(variable, 'must be a whole number', raw)
  const value = Number(raw.trim())
  if (value < min || value > max) fail(variable, `must be between ${min} and ${max}`, raw)
  return value
}

function readBoolean(env: Env, variable: string, fallback: boolean): boolean {
  const raw = env[variable]
  if (raw === undefined || raw === '') return fallback
  if (raw === 'true' || raw === '1') return true
  if (raw === 'false' || raw === '0') return false
  return fail(variable, 'must be true or false', raw)
}

function readChoice<T extends string>(env: Env, variable: string, fallback: T, choices: readonly T[]): T {
  const raw = readString(env, variable, fallback)
  if (!(choices as readonly string[]).includes(raw)) fail(variable, `must be one of ${choices.join(', ')}`, raw)
  return raw as T
}

function isWholeSeconds(value: unknown, min: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= MAX_SECONDS
}

function parsePolicy(variable: string, name: string, raw: unknown, defaults: Policy): Policy {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(variable, `policy "${name}" must be an object`)
  const fields = raw as Record<string, unknown>
  for (const key of Object.keys(fields)) {
    if (!['idleTimeout', 'absoluteTimeout', 'maxPerUser', 'onLimit'].includes(key)) {
      fail(variable, `policy "${name}" has unknown field "${key}"`)
    }
  }
  const idleTimeout = fields.idleTimeout ?? defaults.idleTimeout
  const absoluteTimeout = fields.absoluteTimeout ?? defaults.absoluteTimeout
  const maxPerUser = fields.maxPerUser ?? 0
  const onLimit = fields.onLimit ?? 'evict_oldest'
  if (!isWholeSeconds(idleTimeout, 1)) fail(variable, `policy "${name}" idleTimeout must be whole seconds between 1 and ${MAX_SECONDS}`)
  if (!isWholeSeconds(absoluteTimeout, 1)) fail(variable, `policy "${name}" absoluteTimeout must be whole seconds between 1 and ${MAX_SECONDS}`)
  if (typeof maxPerUser !== 'number' || !Number.isInteger(maxPerUser) || maxPerUser < 0 || maxPerUser > 100000) {
    fail(variable, `policy "${name}" maxPerUser must be a whole number between 0 and 100000`)
  }
  if (typeof onLimit !== 'string' || !(ON_LIMIT as readonly string[]).includes(onLimit)) {
    fail(variable, `policy "${name}" onLimit must be one of ${ON_LIMIT.join(', ')}`)
  }
  return Object.freeze({ name, idleTimeout, absoluteTimeout, maxPerUser, onLimit: onLimit as OnLimit })
}

function loadPolicies(env: Env): Map<string, Policy> {
  const defaultPolicy: Policy = Object.freeze({
    name: 'default',
    idleTimeout: readInteger(env, 'SESSION_IDLE_TIMEOUT', 7200, 1, MAX_SECONDS),
    absoluteTimeout: readInteger(env, 'SESSION_ABSOLUTE_TIMEOUT', 604800, 1, MAX_SECONDS),
    maxPerUser: readInteger(env, 'SESSION_MAX_PER_USER', 0, 0, 100000),
    onLimit: readChoice(env, 'SESSION_ON_LIMIT', 'evict_oldest', ON_LIMIT),
  })
  const policies = new Map<string, Policy>([['default', defaultPolicy]])
  const raw = readString(env, 'SESSION_POLICIES', '{}')
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    fail('SESSION_POLICIES', 'must be a JSON object of named policies', raw)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    fail('SESSION_POLICIES', 'must be a JSON object of named policies', raw)
  }
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!POLICY_NAME.test(name)) fail('SESSION_POLICIES', `policy name "${name}" must be 1-64 of A-Z a-z 0-9 _ . -`)
    if (name === 'default') fail('SESSION_POLICIES', 'must not redefine "default" (use the SESSION_* variables)')
    // An app key could otherwise create a session the console would take for an operator's.
    if (name === 'console') fail('SESSION_POLICIES', 'must not define "console", the operator console\'s built-in policy (use the CONSOLE_* variables)')
    policies.set(name, parsePolicy('SESSION_POLICIES', name, value, defaultPolicy))
  }
  return policies
}

function parseKeyList(env: Env, variable: string, scope: ApiKeyConfig['scope']): ApiKeyConfig[] {
  const raw = env[variable]
  if (raw === undefined || raw.trim() === '') return []
  return raw.split(',').map((entry) => {
    const separator = entry.indexOf(':')
    const name = entry.slice(0, separator).trim()
    const secret = entry.slice(separator + 1).trim()
    if (separator < 1 || !KEY_NAME.test(name)) {
      fail(variable, 'must be a comma-separated list of name:secret with names of A-Z a-z 0-9 _ . -')
    }
    if (secret.length < MIN_SECRET_LENGTH || /[\s,]/.test(secret)) {
      fail(variable, `key "${name}" needs a secret of at least ${MIN_SECRET_LENGTH} characters without spaces or commas`)
    }
    // A secret that no Authorization: Bearer header can carry (src/auth/api-keys.ts reads 1-512 visible ASCII characters)
    // would make its key unusable; one character repeated is a placeholder, not a secret.
    if (secret.length > MAX_SECRET_LENGTH) fail(variable, `key "${name}" has a secret longer than ${MAX_SECRET_LENGTH} characters, which a Bearer header cannot carry`)
    if (!/^[\x21-\x7e]+$/.test(secret)) fail(variable, `key "${name}" has a secret with characters a Bearer header cannot carry (use visible ASCII only)`)
    if (new Set(secret).size === 1) fail(variable, `key "${name}" has a secret of one repeated character: use a random one (e.g. openssl rand -base64 32)`)
    return Object.freeze({ name, secret, scope })
  })
}

function loadApiKeys(env: Env): ApiKeyConfig[] {
  const keys = [...parseKeyList(env, 'API_KEYS', 'sessions'), ...parseKeyList(env, 'ADMIN_API_KEYS', 'admin')]
  const names = new Set<string>()
  const secrets = new Set<string>()
  for (const key of keys) {
    const variable = key.scope === 'admin' ? 'ADMIN_API_KEYS' : 'API_KEYS'
    if (names.has(key.name)) fail(variable, `key name "${key.name}" is used twice`)
    if (secrets.has(key.secret)) fail(variable, `key "${key.name}" reuses another key's secret`)
    names.add(key.name)
    secrets.add(key.secret)
  }
  return keys
}

function loadCookie(env: Env): CookieConfig {
  const name = readString(env, 'COOKIE_NAME', 'sid')
  if (!COOKIE_NAME.test(name) || name.length > 64) fail('COOKIE_NAME', 'must be a cookie name token of at most 64 characters', name)
  if (name === 'console_sid') fail('COOKIE_NAME', 'must not be console_sid, the operator console\'s own cookie', name)
  const domainRaw = env.COOKIE_DOMAIN?.trim()
  const domain = domainRaw === undefined || domainRaw === '' ? undefined : domainRaw
  if (domain !== undefined && !/^\.?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(domain)) {
    fail('COOKIE_DOMAIN', 'must be a host name such as example.com', domain)
  }
  const cookiePath = readString(env, 'COOKIE_PATH', '/')
  if (!cookiePath.startsWith('/') || /[;\s\x00-\x1f\x7f]/.test(cookiePath)) fail('COOKIE_PATH', 'must start with / and contain no ; or spaces', cookiePath)
  const secure = readBoolean(env, 'COOKIE_SECURE', true)
  const sameSite = readChoice(env, 'COOKIE_SAMESITE', 'lax', SAME_SITE)
  if (sameSite === 'none' && !secure) fail('COOKIE_SAMESITE', 'none requires COOKIE_SECURE=true (browsers drop SameSite=None cookies without Secure)')
  if (name.startsWith('__Host-')) {
    if (!secure) fail('COOKIE_NAME', 'with the __Host- prefix requires COOKIE_SECURE=true', name)
    if (domain !== undefined) fail('COOKIE_NAME', 'with the __Host- prefix requires COOKIE_DOMAIN to be unset', name)
    if (cookiePath !== '/') fail('COOKIE_NAME', 'with the __Host- prefix requires COOKIE_PATH=/', name)
  }
  if (name.startsWith('__Secure-') && !secure) fail('COOKIE_NAME', 'with the __Secure- prefix requires COOKIE_SECURE=true', name)
  return Object.freeze({ name, domain, path: cookiePath, secure, sameSite })
}

function loadCron(env: Env): string {
  const raw = readString(env, 'PRUNE_CRON', '*/15 * * * *')
  const fields = raw.trim().split(/\s+/)
  if (fields.length < 5 || fields.length > 6) fail('PRUNE_CRON', 'must be a cron expression of 5 or 6 fields', raw)
  try {
    new CronTime(raw.trim())
  } catch (err) {
    fail('PRUNE_CRON', `is not a valid cron expression: ${(err as Error).message}`, raw)
  }
  return raw.trim()
}

// Without DATABASE_URL the service starts a private embedded database: right for a newcomer's first `npm start`, and the
// very failure this service exists to end on a node behind a load balancer (its users signed out, an empty store). So it
// is refused where it cannot be meant (a non-loopback HOST, NODE_ENV=production) unless EMBEDDED_DB=true asks for it.
function checkEmbeddedDb(env: Env, config: Pick<Config, 'host' | 'databaseUrl'>): void {
  const raw = env.EMBEDDED_DB
  const asked = raw === undefined || raw === '' ? undefined : readBoolean(env, 'EMBEDDED_DB', false)
  if (config.databaseUrl !== undefined) {
    if (asked === true) fail('EMBEDDED_DB', 'is true but DATABASE_URL is set too: unset one of them')
    return
  }
  if (asked === true) return
  if (asked === false) fail('DATABASE_URL', 'is unset and EMBEDDED_DB=false: set DATABASE_URL to the shared Postgres')
  const where = env.NODE_ENV === 'production' ? 'NODE_ENV=production' : !isLoopback(config.host) ? `HOST=${config.host}` : undefined
  if (where !== undefined) {
    fail('DATABASE_URL', `is unset: with ${where} the service will not start a private embedded database (this node would serve an empty session store of its own); set DATABASE_URL to the shared Postgres, or EMBEDDED_DB=true if a private database is really meant`)
  }
}

// Validate records activity at most every SESSION_TOUCH_INTERVAL, so a user active all along can look idle for that long:
// an idle timeout not longer than that signs active users out (refused), and one less than twice that signs out anyone
// whose pauses exceed idleTimeout - SESSION_TOUCH_INTERVAL (warned).
function checkIdleAgainstTouch(policies: ReadonlyMap<string, Policy>, touchInterval: number): string[] {
  const warnings: string[] = []
  if (touchInterval === 0) return warnings
  for (const policy of policies.values()) {
    const variable = policy.name === 'default' ? 'SESSION_IDLE_TIMEOUT' : 'SESSION_POLICIES'
    const which = policy.name === 'default' ? `(${policy.idleTimeout})` : `policy "${policy.name}" idleTimeout (${policy.idleTimeout})`
    if (policy.idleTimeout <= touchInterval) {
      fail(variable, `${which} must be longer than SESSION_TOUCH_INTERVAL (${touchInterval}): activity is recorded only that often, so active users would be signed out`)
    }
    if (policy.idleTimeout < touchInterval * 2) {
      warnings.push(`${variable} ${which} is less than twice SESSION_TOUCH_INTERVAL (${touchInterval}): a user who pauses for more than ${policy.idleTimeout - touchInterval} s between requests may be signed out`)
    }
  }
  return warnings
}

function loadHttpLimits(env: Env): HttpLimits {
  const headersTimeoutMs = readInteger(env, 'HTTP_HEADERS_TIMEOUT_MS', DEFAULT_HEADERS_TIMEOUT_MS, 500, 600_000)
  const requestTimeoutMs = readInteger(env, 'HTTP_REQUEST_TIMEOUT_MS', DEFAULT_REQUEST_TIMEOUT_MS, 500, 600_000)
  // Node refuses a headers timeout longer than the request timeout: the request's bound would end the headers first anyway.
  if (headersTimeoutMs > requestTimeoutMs) fail('HTTP_HEADERS_TIMEOUT_MS', `must not be longer than HTTP_REQUEST_TIMEOUT_MS (${requestTimeoutMs})`, String(headersTimeoutMs))
  return Object.freeze({
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs: readInteger(env, 'HTTP_KEEP_ALIVE_TIMEOUT_MS', DEFAULT_KEEP_ALIVE_TIMEOUT_MS, 500, 600_000),
    maxConnections: readInteger(env, 'HTTP_MAX_CONNECTIONS', DEFAULT_MAX_CONNECTIONS, 1, 1_000_000),
  })
}

function loadDatabaseUrl(env: Env): string | undefined {
  const raw = env.DATABASE_URL
  if (raw === undefined || raw.trim() === '') return undefined
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return fail('DATABASE_URL', 'must be a postgres:// URL')
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') fail('DATABASE_URL', 'must be a postgres:// URL')
  return raw
}

export function loadConfig(env: Env): Config {
  const host = readString(env, 'HOST', '127.0.0.1')
  const config: Config = {
    host,
    port: readInteger(env, 'PORT', 8080, 0, 65535),
    databaseUrl: loadDatabaseUrl(env),
    dataDir: path.resolve(readString(env, 'DATA_DIR', './.data')),
    embeddedDbPort: readInteger(env, 'EMBEDDED_DB_PORT', 15432, 1, 65535),
    databasePoolMax: readInteger(env, 'DATABASE_POOL_MAX', 10, 1, 1000),
    databaseConnectTimeout: readInteger(env, 'DATABASE_CONNECT_TIMEOUT', 5, 1, 300),
    databaseStatementTimeoutMs: readInteger(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 5000, 100, 600000),
    databaseQueueMax: readInteger(env, 'DATABASE_QUEUE_MAX', 500, 0, 100000),
    databaseQueueTimeoutMs: readInteger(env, 'DATABASE_QUEUE_TIMEOUT_MS', 2000, 0, 600000),
    migrate: readBoolean(env, 'MIGRATE', true),
    apiKeys: Object.freeze(loadApiKeys(env)),
    policies: loadPolicies(env),
    touchInterval: readInteger(env, 'SESSION_TOUCH_INTERVAL', 60, 0, 86400),
    cacheTtl: readInteger(env, 'SESSION_CACHE_TTL', 0, 0, 300),
    cacheMaxEntries: readInteger(env, 'SESSION_CACHE_MAX_ENTRIES', 20000, 1, 10_000_000),
    retention: readInteger(env, 'SESSION_RETENTION', 2592000, 0, MAX_SECONDS),
    pruneCron: loadCron(env),
    cookie: loadCookie(env),
    console: Object.freeze({
      idleTimeout: readInteger(env, 'CONSOLE_IDLE_TIMEOUT', 900, 60, 86400),
      absoluteTimeout: readInteger(env, 'CONSOLE_ABSOLUTE_TIMEOUT', 28800, 60, 7 * 86400),
    }),
    logLevel: readChoice(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
    http: loadHttpLimits(env),
    warnings: [],
  }
  if (config.apiKeys.length === 0 && !isLoopback(host)) {
    fail('API_KEYS', `or ADMIN_API_KEYS must be set when HOST is not a loopback address (HOST=${host})`)
  }
  checkEmbeddedDb(env, config)
  const warnings = checkIdleAgainstTouch(config.policies, config.touchInterval)
  if (!config.cookie.secure && !isLoopback(host)) {
    warnings.push(`COOKIE_SECURE=false with HOST=${host}: browsers will send the session cookie over plain HTTP, where anyone on the path can read it; set COOKIE_SECURE=true and serve the apps over HTTPS`)
  }
  return Object.freeze({ ...config, warnings: Object.freeze(warnings) })
}

// For entry points: the configuration, or one line on stderr naming the variable and exit code 1.
export function loadConfigOrExit(env: Env): Config {
  try {
    return loadConfig(env)
  } catch (err) {
    process.stderr.write(`invalid configuration: ${(err as Error).message}\n`)
    process.exit(1)
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}
