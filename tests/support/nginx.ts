// Debian's nginx for tests: find the binary, fill deploy/nginx.conf's ${PLACEHOLDERS}, run it under a temp prefix.
import { spawn, spawnSync } from 'node:child_process'
import { accessSync, chmodSync, closeSync, constants as fsConstants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { isListening, ROOT } from './process.js'

type Tap = { teardown(fn: () => unknown): void }

export const NGINX_CONF = path.join(ROOT, 'deploy', 'nginx.conf')
export const NGINX_MISSING = 'nginx is not installed: apt-get install nginx-light (see README) to run the load-balancer e2e test'

// nginx lives in /usr/sbin, which a non-root PATH often lacks.
export function findNginx(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter((dir) => dir !== ''), '/usr/sbin', '/usr/local/sbin']
  for (const dir of dirs) {
    const candidate = path.join(dir, 'nginx')
    try {
      accessSync(candidate, fsConstants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

// The ${NAME} placeholders of the config, in order of first appearance.
export function placeholders(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Z][A-Z0-9_]*)\}/g)].map((match) => match[1]))]
}

// What the nginx image's envsubst does with the same file: every placeholder replaced, or an error naming the missing one.
export function renderNginxConf(values: Record<string, string>, text = readFileSync(NGINX_CONF, 'utf8')): string {
  const missing = placeholders(text).filter((name) => values[name] === undefined)
  if (missing.length > 0) throw new Error(`no value for ${missing.join(', ')} in deploy/nginx.conf`)
  return text.replace(/\$\{([A-Z][A-Z0-9_]*)\}/g, (_match, name: string) => values[name])
}

// A prefix directory the worker processes (user nobody when nginx starts as root) can traverse.
export function nginxPrefix(t: Tap): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nginx-e2e-'))
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function globals(prefix: string): string {
  return `daemon off; pid ${path.join(prefix, 'nginx.pid')}; error_log ${path.join(prefix, 'error.log')} warn;`
}

// nginx -t on a rendered config: status 0 and its output.
export function testNginxConf(bin: string, prefix: string, conf: string): { ok: boolean; output: string } {
  const file = path.join(prefix, 'nginx.conf')
  writeFileSync(file, conf)
  // stdout a file, as in startNginx: nginx -t opens the config's /dev/stdout access log too.
  const stdout = openSync(path.join(prefix, 'nginx-t.out'), 'a')
  try {
    const result = spawnSync(bin, ['-t', '-p', `${prefix}/`, '-c', file, '-g', globals(prefix)], { stdio: ['ignore', stdout, 'pipe'], encoding: 'utf8', timeout: 10_000 })
    return { ok: result.status === 0, output: result.stderr }
  } finally {
    closeSync(stdout)
  }
}

export interface Nginx {
  // The access log (one line per request, deploy/nginx.conf's "upstreams" format) and nginx's error log.
  accessLog(): string
  errorLog(): string
}

// Starts nginx in the foreground on the rendered config and waits until it accepts connections on `port`.
export async function startNginx(t: Tap, bin: string, conf: string, port: number): Promise<Nginx> {
  const prefix = nginxPrefix(t)
  const file = path.join(prefix, 'nginx.conf')
  writeFileSync(file, conf)
  // stdout is a file, not a pipe: the config logs to /dev/stdout, which nginx opens, and a socket (Node's pipes) cannot be opened.
  const accessFile = path.join(prefix, 'access.log')
  const stdout = openSync(accessFile, 'a')
  const child = spawn(bin, ['-p', `${prefix}/`, '-c', file, '-g', globals(prefix)], { stdio: ['ignore', stdout, 'pipe'] })
  closeSync(stdout)
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
  let gone = false
  const exited = new Promise<void>((resolve) => child.once('exit', () => { gone = true; resolve() }))
  const errorLog = () => {
    try {
      return err + readFileSync(path.join(prefix, 'error.log'), 'utf8')
    } catch {
      return err
    }
  }
  t.teardown(async () => {
    if (gone) return
    // SIGTERM is nginx's fast shutdown; SIGKILL if it hangs.
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  })
  const deadline = Date.now() + 10_000
  while (!(await isListening(port))) {
    if (gone) throw new Error(`nginx exited at start: ${errorLog()}`)
    if (Date.now() > deadline) throw new Error(`nginx did not listen on ${port} within 10 s: ${errorLog()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { accessLog: () => readFileSync(accessFile, 'utf8'), errorLog }
}
