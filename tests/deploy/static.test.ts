// The deployment files checked without a Docker engine: compose's services, healthchecks and secrets, the Dockerfile's
// stages, user and start command (the one the e2e test runs), and deploy/nginx.conf (nginx -t when nginx is installed).
import { spawnSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { KEEP_ALIVE_TIMEOUT_MS } from '../../src/server.js'
import { findNginx, NGINX_CONF, nginxPrefix, placeholders, renderNginxConf, testNginxConf } from '../support/nginx.js'
import { MAIN, NODE_FLAGS, ROOT } from '../support/process.js'

interface ComposeService {
  image?: string
  build?: unknown
  command?: string[]
  environment?: Record<string, string>
  healthcheck?: { test?: string[]; disable?: boolean }
  networks?: Record<string, { ipv4_address?: string } | null>
  depends_on?: Record<string, { condition: string }>
  volumes?: string[]
  deploy?: { replicas?: number }
  restart?: string
}

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8')
// Compose accepts YAML merge keys (<<: *anchor), which YAML 1.2 leaves out unless asked.
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, ComposeService>
  volumes?: Record<string, unknown>
  networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string; ip_range?: string }> } }>
}
const services = compose.services
const packageJson = JSON.parse(read('package.json')) as { scripts: Record<string, string> }
const nginxConf = read('deploy/nginx.conf')

const SESSION_IMAGE = 'session-service:local'
const sessionNodes = Object.entries(services).filter(([name, service]) => service.image === SESSION_IMAGE && name !== 'migrate')
const environment = (service: ComposeService | undefined): Record<string, string> => service?.environment ?? {}

t.test('compose: postgres:16 with a named volume and a pg_isready healthcheck', async (t) => {
  const postgres = services.postgres
  t.ok(postgres, 'a postgres service')
  t.match(postgres.image, /^postgres:16/, 'postgres:16')
  const volume = (postgres.volumes ?? []).find((entry) => entry.endsWith(':/var/lib/postgresql/data'))
  t.ok(volume, 'the data directory is a volume')
  t.ok(compose.volumes && volume!.split(':')[0] in compose.volumes, 'a named volume declared at the top level')
  t.match(postgres.healthcheck?.test?.join(' '), /pg_isready/, 'healthcheck: pg_isready')
})

t.test('compose: a one-shot migrate runs `npm run migrate`\'s command once postgres is healthy', async (t) => {
  const migrate = services.migrate
  t.ok(migrate, 'a migrate service')
  t.same(migrate.command, packageJson.scripts.migrate.split(' '), 'node dist/migrate-cli.js')
  t.equal(migrate.image, SESSION_IMAGE, 'the service image')
  t.equal(migrate.restart, 'no', 'runs once')
  t.equal(migrate.depends_on?.postgres?.condition, 'service_healthy', 'after postgres is healthy')
  t.equal(migrate.healthcheck?.disable, true, 'without the image\'s healthcheck, which a one-shot never passes')
})

t.test('compose: three session nodes with MIGRATE=false, started after migrate completed, each with a healthcheck', async (t) => {
  const replicas = sessionNodes.reduce((sum, [, service]) => sum + (service.deploy?.replicas ?? 1), 0)
  t.equal(replicas, 3, `three nodes (${sessionNodes.map(([name]) => name).join(', ')})`)
  for (const [name, service] of sessionNodes) {
    t.ok(service.build, `${name} builds from the Dockerfile`)
    t.equal(environment(service).MIGRATE, 'false', `${name}: MIGRATE=false`)
    t.equal(service.depends_on?.migrate?.condition, 'service_completed_successfully', `${name} waits for migrate`)
    t.match(service.healthcheck?.test?.join(' '), /\/healthz/, `${name} has a /healthz healthcheck`)
    t.match(environment(service).DATABASE_URL, /@postgres:5432\//, `${name} uses the compose postgres`)
  }
})

t.test('compose: nginx fills every placeholder of deploy/nginx.conf, pointing at the three nodes and the app', async (t) => {
  const nginx = services.nginx
  t.ok(nginx, 'an nginx service')
  t.ok((nginx.volumes ?? []).some((entry) => /^\.\/deploy\/nginx\.conf:\/etc\/nginx\/templates\/nginx\.conf\.template(:ro)?$/.test(entry)),
    'deploy/nginx.conf is mounted as the image\'s template')
  const env = environment(nginx)
  t.equal(env.NGINX_ENVSUBST_OUTPUT_DIR, '/etc/nginx', 'the template becomes /etc/nginx/nginx.conf')
  const names = placeholders(nginxConf)
  t.same(names.filter((name) => env[name] === undefined), [], `compose sets all of ${names.join(', ')}`)
  // nginx resolves an upstream's host names once, at start, and refuses to start while one does not resolve (a stopped
  // container's): compose hands it each node's fixed address instead.
  const upstreams = names.filter((name) => name.startsWith('SESSION_UPSTREAM_')).map((name) => interpolate(env[name]))
  t.same([...upstreams].sort(), sessionNodes.map(([name]) => `${fixedAddress(name)}:8080`).sort(), 'one upstream server per node: its fixed address, on the image\'s PORT')
  t.equal(interpolate(env.APP_UPSTREAM), `${fixedAddress('app')}:8000`, 'the app upstream is the app service\'s fixed address')
  for (const value of [...upstreams, interpolate(env.APP_UPSTREAM)]) t.match(value, /^\d+\.\d+\.\d+\.\d+:\d+$/, `${value}: an address, no name to resolve`)
  t.ok(services.app?.command, 'an example app service')
  for (const [name] of sessionNodes) t.equal(nginx.depends_on?.[name]?.condition, 'service_healthy', `nginx waits for ${name}`)
  // nginx authenticates to GET /v1/auth with a key the nodes accept.
  const nginxKey = env.NGINX_AUTH_API_KEY?.match(/^\$\{([A-Z_]+)/)?.[1]
  t.ok(nginxKey !== undefined && environment(sessionNodes[0][1]).API_KEYS.includes(`:\${${nginxKey}`), 'nginx\'s key is in the nodes\' API_KEYS')
})

// What compose makes of `${NAME:-default}` when NAME is not set (the defaults are what the file promises).
function interpolate(value: string | undefined): string {
  return (value ?? '').replace(/\$\{[A-Z][A-Z0-9_]*:-([^}]*)\}/g, '$1')
}
function fixedAddress(service: string): string {
  return interpolate(services[service]?.networks?.default?.ipv4_address)
}
const ipv4 = (address: string) => address.split('.').reduce((sum, part) => sum * 256 + Number(part), 0)
function inCidr(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/')
  const size = 2 ** (32 - Number(bits))
  return Math.floor(ipv4(address) / size) === Math.floor(ipv4(base) / size)
}

t.test('compose: the nodes and the app have fixed addresses in the subnet, outside the range other containers get', async (t) => {
  const [config] = compose.networks?.default?.ipam?.config ?? []
  const subnet = interpolate(config?.subnet)
  const range = interpolate(config?.ip_range)
  t.match(subnet, /^\d+\.\d+\.\d+\.\d+\/\d+$/, `the default network has a subnet (${subnet})`)
  t.ok(range !== '' && inCidr(range.split('/')[0], subnet), `dynamic addresses come from ip_range ${range}, inside it`)
  const fixed = [...sessionNodes.map(([name]) => name), 'app'].map((name) => ({ name, address: fixedAddress(name) }))
  for (const { name, address } of fixed) {
    t.ok(/^\d+\.\d+\.\d+\.\d+$/.test(address) && inCidr(address, subnet), `${name}: ${address}, in ${subnet}`)
    t.notOk(inCidr(address, range), `${name}: outside ${range}, so a container created while ${name} is down cannot take its address`)
  }
  t.equal(new Set(fixed.map(({ address }) => address)).size, fixed.length, 'all different')
  t.match(read('.env.example'), /^SUBNET_PREFIX=/m, '.env.example shows SUBNET_PREFIX, to move the network')
})

t.test('compose: every long-running service has a healthcheck', async (t) => {
  for (const [name, service] of Object.entries(services)) {
    if (name === 'migrate') continue
    t.ok(service.healthcheck?.test?.length, `${name} has a healthcheck`)
  }
})

// A secret in compose is a required variable from .env: `${NAME:?message}`, never a literal.
const REQUIRED_VARIABLE = /^\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}$/
const SECRET_NAME = /(PASSWORD|SECRET|TOKEN|_API_KEY)$/

function literalSecrets(key: string, value: string): string[] {
  const found: string[] = []
  if (SECRET_NAME.test(key) && !REQUIRED_VARIABLE.test(value)) found.push(key)
  if (/API_KEYS$/.test(key)) {
    for (const entry of value.split(',')) {
      const secret = entry.slice(entry.indexOf(':') + 1)
      if (!REQUIRED_VARIABLE.test(secret)) found.push(`${key} (${entry.slice(0, entry.indexOf(':'))})`)
    }
  }
  const credentials = /:\/\/[^:/@]+:([^@]*)@/.exec(value)
  if (credentials !== null && !REQUIRED_VARIABLE.test(credentials[1])) found.push(`${key} (URL password)`)
  return found
}

t.test('compose: no literal secrets; each is a required variable that .env.example lists empty', async (t) => {
  const found = Object.entries(services).flatMap(([name, service]) =>
    Object.entries(environment(service)).flatMap(([key, value]) => literalSecrets(key, String(value)).map((what) => `${name}: ${what}`)))
  t.same(found, [], 'every password, key and URL password is ${VAR:?…}')
  t.same(literalSecrets('API_KEYS', 'app:dev-app-secret-0123456789'), ['API_KEYS (app)'], 'the check does catch a literal key')
  const example = read('.env.example')
  const required = [...new Set([...read('docker-compose.yml').matchAll(/\$\{([A-Z][A-Z0-9_]*):\?/g)].map((match) => match[1]))]
  t.ok(required.length >= 4, `secrets come from the environment (${required.join(', ')})`)
  for (const name of required) t.match(example, new RegExp(`^${name}=$`, 'm'), `.env.example lists ${name}, empty`)
  t.match(read('.gitignore'), /^\.env$/m, '.env is never committed')
})

// Dockerfile instructions with their arguments, continuation lines joined and comments dropped.
function instructions(text: string): Array<{ op: string; args: string }> {
  return text.replace(/\\\n/g, ' ').split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/)
      return { op: op.toUpperCase(), args: rest.join(' ') }
    })
}

t.test('Dockerfile: build stage, slim runtime with production dependencies, non-root, healthcheck, SIGTERM, the e2e command', async (t) => {
  const all = instructions(read('Dockerfile'))
  const froms = all.map((instruction, i) => ({ ...instruction, i })).filter(({ op }) => op === 'FROM')
  t.ok(froms.length >= 2, 'multi-stage')
  t.match(froms[0].args, /\bAS build$/i, 'a build stage first')
  const build = all.slice(froms[0].i, froms[1].i)
  t.ok(build.some(({ op, args }) => op === 'RUN' && /npm ci\b/.test(args) && !/--omit=dev/.test(args)), 'the build stage installs dev dependencies')
  t.ok(build.some(({ op, args }) => op === 'RUN' && /npm run build/.test(args)), 'and runs npm run build')
  const runtime = all.slice(froms.at(-1)!.i)
  t.ok(froms.every(({ args }) => /^node:24-bookworm-slim\b/.test(args)), 'every stage is node:24-bookworm-slim (Node 24, the current LTS line)')
  t.match(services.app?.image, /^node:24-bookworm-slim$/, 'and so is the example app')
  t.notMatch(read('Dockerfile'), /^#\s*syntax=/m, 'no # syntax= line: a BuildKit build then never fetches a frontend image')
  t.ok(runtime.some(({ op, args }) => op === 'RUN' && /npm ci/.test(args) && /--omit=dev/.test(args) && /--omit=optional/.test(args)),
    'production dependencies only, without the embedded Postgres binaries')
  t.ok(runtime.some(({ op, args }) => op === 'COPY' && /--from=build/.test(args) && /dist/.test(args)), 'dist/ comes from the build stage')
  t.ok(runtime.some(({ op, args }) => op === 'COPY' && /^sql\b/.test(args)), 'sql/ (migrations) is in the image')
  t.ok(runtime.some(({ op, args }) => op === 'COPY' && /openapi\.yaml/.test(args)), 'openapi.yaml (GET /openapi.yaml) is in the image')
  t.ok(runtime.some(({ op, args }) => op === 'ENV' && /\bHOST=0\.0\.0\.0\b/.test(args)), 'ENV HOST=0.0.0.0')

  const users = runtime.filter(({ op }) => op === 'USER')
  t.equal(users.length > 0, true, 'a USER')
  t.notMatch(users.at(-1)?.args, /^(root|0)(:|$)/, 'not root')
  const cmdIndex = runtime.findIndex(({ op }) => op === 'CMD')
  t.ok(runtime.findIndex(({ op }) => op === 'USER') < cmdIndex, 'USER comes before CMD')
  t.match(runtime.find(({ op }) => op === 'HEALTHCHECK')?.args, /fetch\(.*\/healthz/, 'HEALTHCHECK asks /healthz with node\'s fetch')
  t.equal(runtime.find(({ op }) => op === 'STOPSIGNAL')?.args, 'SIGTERM', 'STOPSIGNAL SIGTERM')

  const cmd = JSON.parse(runtime[cmdIndex].args) as string[]
  t.same(cmd, ['node', '--max-semi-space-size=8', 'dist/main.js'], 'CMD ["node", "--max-semi-space-size=8", "dist/main.js"]')
  // tests/support/process.ts runs process.execPath with NODE_FLAGS and MAIN: the same file, by the same runtime, with the same flags.
  t.same(cmd, ['node', ...NODE_FLAGS, path.relative(ROOT, MAIN)], 'the command the e2e test runs')
  t.same(cmd, packageJson.scripts.start.split(' '), 'and the one npm start runs')

  const secretish = runtime.concat(build).filter(({ op, args }) => (op === 'ENV' || op === 'ARG') && /(API_KEYS|PASSWORD|SECRET|TOKEN|DATABASE_URL)/.test(args))
  t.same(secretish, [], 'no secrets or database URL baked in')
  const ignored = read('.dockerignore').split('\n').map((line) => line.trim())
  for (const entry of ['.env', '.git', 'node_modules', '.data']) t.ok(ignored.includes(entry), `.dockerignore keeps out ${entry}`)
})

// The blocks `location [=] path { … }` of the config: each ends with a line holding only its closing brace.
function locations(text: string): Map<string, string> {
  return new Map([...text.matchAll(/location\s+(?:=\s+)?(\S+)\s*\{([\s\S]*?)\n\s*\}\n/g)].map((match) => [match[1], match[2]]))
}

t.test('nginx.conf: round-robin without stickiness, keepalive below the service\'s, and which requests may be replayed', async (t) => {
  const upstream = /upstream session_nodes \{([\s\S]*?)\n\s*\}\n/.exec(nginxConf)?.[1] ?? ''
  const directives = upstream.split('\n').map((line) => line.replace(/#.*/, '').trim()).filter((line) => line !== '')
  t.same(directives.filter((line) => /^(ip_hash|hash|sticky|least_conn|random)\b/.test(line)), [], 'plain round-robin, no stickiness')
  t.equal(directives.filter((line) => /^server \$\{SESSION_UPSTREAM_\d\}.*max_fails=\d+ fail_timeout=\d+s/.test(line)).length, 3, 'three nodes with passive failover')
  const keepaliveTimeout = Number(/keepalive_timeout (\d+)s;/.exec(upstream)?.[1])
  t.ok(keepaliveTimeout > 0 && keepaliveTimeout < KEEP_ALIVE_TIMEOUT_MS / 1000,
    `upstream keepalive_timeout ${keepaliveTimeout} s < the service's keepAliveTimeout ${KEEP_ALIVE_TIMEOUT_MS / 1000} s`)
  t.match(nginxConf, /add_header X-Upstream \$upstream_name_1\$upstream_name_2\$upstream_name_3 always;/, 'X-Upstream names the nodes tried (tests/e2e checks the names)')
  const connectTimeout = /proxy_connect_timeout (\d+)ms;/.exec(nginxConf)?.[1]
  t.ok(Number(connectTimeout) > 0 && Number(connectTimeout) <= 500, `proxy_connect_timeout ${connectTimeout} ms: a node whose address drops packets costs at most that`)
  t.notMatch(nginxConf.replace(/#.*/g, ''), /proxy_(hide_header|ignore_headers)\s+(Set-)?Cookie|proxy_cookie_(domain|path)\s+(?!off)/i, 'Cookie and Set-Cookie pass untouched')

  const blocks = locations(nginxConf)
  for (const safe of ['/v1/sessions/validate', '/v1/sessions/touch', '/v1/sessions/revoke']) {
    t.match(blocks.get(safe), /proxy_next_upstream error timeout http_502 http_503 non_idempotent;/, `${safe} is retried on another node`)
  }
  t.match(blocks.get('/v1/auth'), /proxy_next_upstream error timeout http_502 http_503;/, 'GET /v1/auth is retried on another node')
  for (const once of ['/v1/sessions', '/v1/sessions/rotate']) {
    t.match(blocks.get(once), /proxy_next_upstream error timeout;/, `${once} only when no node received it`)
  }
  const app = blocks.get('/app/') ?? ''
  t.match(app, /auth_request \/_auth;/, '/app/ is protected by auth_request')
  t.match(app, /auth_request_set \$session_user_id \$upstream_http_x_user_id;[\s\S]*proxy_set_header X-User-Id \$session_user_id;/, 'X-User-Id from the auth answer')
  t.match(app, /proxy_set_header X-Session-Id \$session_id;/, 'X-Session-Id from the auth answer')
  t.match(blocks.get('/_auth'), /proxy_pass http:\/\/session_nodes\/v1\/auth;/, 'the auth subrequest asks GET /v1/auth on the nodes')
})

const nginxBin = findNginx()
t.test('nginx.conf: nginx -t accepts it, filled as compose fills it', { skip: nginxBin === undefined ? 'nginx is not installed: apt-get install nginx-light (see README) to check deploy/nginx.conf with nginx -t' : false }, async (t) => {
  const prefix = nginxPrefix(t)
  // Compose's host names do not resolve here; loopback addresses stand in for them, as in the e2e test. nginx -t only
  // parses and opens files: nothing listens or connects.
  const values = {
    NGINX_LISTEN: '127.0.0.1:18080',
    SESSION_UPSTREAM_1: '127.0.0.1:18081',
    SESSION_UPSTREAM_2: '127.0.0.1:18082',
    SESSION_UPSTREAM_3: '127.0.0.1:18083',
    APP_UPSTREAM: '127.0.0.1:18084',
    NGINX_AUTH_API_KEY: 'static-test-key-0123456789',
  }
  const { ok, output } = testNginxConf(nginxBin!, prefix, renderNginxConf(values, readFileSync(NGINX_CONF, 'utf8')))
  t.ok(ok, `nginx -t: ${output.trim()}`)
  // Why compose gives nginx addresses: with a host name that does not resolve (a stopped container's), nginx refuses.
  const named = testNginxConf(nginxBin!, prefix, renderNginxConf({ ...values, SESSION_UPSTREAM_2: 'session-2.invalid:8080' }, readFileSync(NGINX_CONF, 'utf8')))
  t.notOk(named.ok, 'with a node\'s name that does not resolve, nginx -t fails')
  t.match(named.output, /host not found in upstream/, `nginx says: ${named.output.trim().split('\n')[0]}`)
})

t.test('deploy/rolling-update.sh: executable, strict bash, one node at a time, DOCKER replaceable; shellcheck when installed', async (t) => {
  const script = read('deploy/rolling-update.sh')
  t.ok((statSync(path.join(ROOT, 'deploy', 'rolling-update.sh')).mode & 0o111) !== 0, 'executable')
  t.match(script, /^#!\/usr\/bin\/env bash\n/, 'bash')
  t.match(script, /^set -euo pipefail$/m, 'set -euo pipefail')
  t.match(script, /DOCKER:-docker/, 'the docker command comes from DOCKER (the test\'s stand-in), docker by default')
  t.match(script, /compose run --rm --no-deps -T migrate/, 'migrate runs alone')
  t.match(script, /compose up -d --no-deps /, 'each node is replaced alone')
  t.match(script, /session-1 session-2 session-3/, 'the compose file\'s nodes')
  for (const [name] of sessionNodes) t.match(script, new RegExp(`\\b${name}\\b`), `${name} is in its list`)
  t.match(read('README.md'), /deploy\/rolling-update\.sh/, 'README points to it')
  const shellcheck = spawnSync('shellcheck', ['deploy/rolling-update.sh', 'tests/support/fake-docker'], { cwd: ROOT, encoding: 'utf8' })
  if (shellcheck.error !== undefined) {
    t.comment('shellcheck is not installed (apt-get install shellcheck): skipped')
  } else {
    t.equal(shellcheck.status, 0, `shellcheck finds nothing${shellcheck.stdout === '' ? '' : `: ${shellcheck.stdout}`}`)
  }
})
