// The service refuses to start on a database driver other than the one package.json pins (src/driver.ts): a tree
// installed with `npm ci --ignore-scripts` before the move to 4.1.0, or a node_modules left from then, held postgres
// 3.4.9 without the fixes its install script wrote, and the service started on it without a word.
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { checkDriver, driverProblem, requiredDriverVersion } from '../../src/driver.js'
import { ensureBuilt, ROOT } from '../support/process.js'

// The last test may build dist/ first and starts a real process: seconds alone, minutes on a loaded machine.
t.setTimeout(300_000)

// A node_modules/postgres holding the given version's package.json and an entry file.
function fakeDriver(root: string, version: string): string {
  const dir = path.join(root, 'node_modules', 'postgres')
  mkdirSync(path.join(dir, 'src'), { recursive: true })
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'postgres', version, type: 'module', main: 'src/index.js', exports: { '.': './src/index.js' } }))
  writeFileSync(path.join(dir, 'src', 'index.js'), 'export default function postgres() {}\n')
  return pathToFileURL(path.join(dir, 'src', 'index.js')).href
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'driver-check-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('the driver installed here is the one package.json pins', async (t) => {
  t.equal(requiredDriverVersion(), '4.1.0')
  t.equal(checkDriver(), undefined, 'no problem (run npm install if this fails)')
})

t.test('another version is refused with a line that names the versions and npm install', async (t) => {
  const root = tempDir(t)
  const old = driverProblem(fakeDriver(root, '3.4.9'), '4.1.0')
  t.match(old, /postgres 3\.4\.9, this service needs 4\.1\.0 \(3\.x loses queries or ends the process when the database restarts\): run npm install$/)
  t.notMatch(old, /\n/, 'one line')
  t.match(driverProblem(fakeDriver(root, '4.2.0'), '4.1.0'), /postgres 4\.2\.0, this service needs 4\.1\.0 \(the version it is tested with\): run npm install$/)
  t.equal(driverProblem(fakeDriver(root, '4.1.0'), '4.1.0'), undefined, 'the pinned version passes')
})

t.test('a driver without its package.json cannot be checked, and is refused', async (t) => {
  const root = tempDir(t)
  const entry = fakeDriver(root, '4.1.0')
  rmSync(path.join(root, 'node_modules', 'postgres', 'package.json'))
  t.match(driverProblem(entry, '4.1.0'), /cannot be checked .*: run npm install$/)
})

// The built service, copied next to a node_modules that holds every installed package but postgres 3.4.9 in place of
// the pinned driver: it exits 1 with one line on stderr, before opening any database.
t.test('the service refuses to start on postgres 3.4.9', async (t) => {
  await ensureBuilt(t)
  const root = tempDir(t)
  cpSync(path.join(ROOT, 'dist'), path.join(root, 'dist'), { recursive: true })
  cpSync(path.join(ROOT, 'package.json'), path.join(root, 'package.json'))
  mkdirSync(path.join(root, 'node_modules'))
  for (const entry of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (entry !== 'postgres') symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(root, 'node_modules', entry))
  }
  fakeDriver(root, '3.4.9')
  const child = spawn(process.execPath, [path.join(root, 'dist', 'main.js')], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', API_KEYS: 'app:app-secret-0123456789abcdef', LOG_LEVEL: 'info', PORT: '16999' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)))
  clearTimeout(timer)
  t.equal(code, 1, 'exit 1')
  t.match(stderr, /^refusing to start: the database driver in .*node_modules\/postgres is postgres 3\.4\.9, this service needs 4\.1\.0 .*: run npm install\n$/, 'one line naming npm install')
  t.equal(stdout, '', 'nothing else: it stopped before opening the database')
})
