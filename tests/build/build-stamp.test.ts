// scripts/build.mjs --if-stale (npm start's prestart, and migrate, sessions, example, bench): dist/ is compiled again
// when, and only when, it is not the build of the current sources. Run in a copy of the layout with a stand-in tsc that
// records each call, so the test checks the decision, not the compiler or how long it takes.
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { ROOT } from '../support/process.js'
// @ts-expect-error: a plain .mjs script without types
import { main } from '../../scripts/build.mjs'

const build = main as (args: string[], options: { root: string; log: (line: string) => void }) => number

// A stand-in for node_modules/typescript/bin/tsc: appends its arguments to tsc-calls.log and writes dist/main.js, or
// exits 2 (a type error) when FAKE_TSC_FAIL is set.
const FAKE_TSC = `
const { appendFileSync, mkdirSync, writeFileSync } = require('node:fs')
appendFileSync('tsc-calls.log', process.argv.slice(2).join(' ') + '\\n')
if (process.env.FAKE_TSC_FAIL) { console.log('src/a.ts(1,1): error TS2322'); process.exit(2) }
mkdirSync('dist', { recursive: true })
writeFileSync('dist/main.js', '// built\\n')
`

// A stand-in for packages/client/build.mjs (the kit, built first): appends a line to the same log, so the order shows.
const FAKE_KIT_BUILD = `
import { appendFileSync } from 'node:fs'
appendFileSync('../../tsc-calls.log', 'kit\\n')
`

function layout(t: Test): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'build-stamp-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  mkdirSync(path.join(root, 'scripts'))
  copyFileSync(path.join(ROOT, 'scripts', 'build.mjs'), path.join(root, 'scripts', 'build.mjs'))
  mkdirSync(path.join(root, 'src', 'http'), { recursive: true })
  writeFileSync(path.join(root, 'src', 'main.ts'), 'export const a = 1\n')
  writeFileSync(path.join(root, 'src', 'http', 'routes.ts'), 'export const b = 2\n')
  writeFileSync(path.join(root, 'tsconfig.json'), '{ "compilerOptions": { "strict": true } }\n')
  writeFileSync(path.join(root, 'tsconfig.build.json'), '{ "extends": "./tsconfig.json" }\n')
  mkdirSync(path.join(root, 'node_modules', 'typescript', 'bin'), { recursive: true })
  writeFileSync(path.join(root, 'node_modules', 'typescript', 'package.json'), '{ "version": "5.9.3" }\n')
  writeFileSync(path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), FAKE_TSC)
  writeFileSync(path.join(root, 'package.json'), '{ "type": "module" }\n')
  mkdirSync(path.join(root, 'packages', 'client', 'src'), { recursive: true })
  writeFileSync(path.join(root, 'packages', 'client', 'src', 'index.ts'), 'export const k = 1\n')
  writeFileSync(path.join(root, 'packages', 'client', 'tsconfig.json'), '{}\n')
  writeFileSync(path.join(root, 'packages', 'client', 'tsconfig.cjs.json'), '{}\n')
  writeFileSync(path.join(root, 'packages', 'client', 'build.mjs'), FAKE_KIT_BUILD)
  return root
}

// The command line itself, as npm runs it (one process: used where its output matters).
function runCli(root: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs'), ...args], {
    cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
  })
  return { status: result.status, stderr: result.stderr, stdout: result.stdout }
}

// The same, in this process (each build still runs the stand-in tsc as a process); returns the status and what it said.
function run(root: string, args: string[], env: Record<string, string> = {}) {
  const lines: string[] = []
  const saved = { ...process.env }
  Object.assign(process.env, env)
  try {
    const status = build(args, { root, log: (line) => lines.push(line) })
    return { status, stderr: lines.map((line) => `${line}\n`).join(''), stdout: '' }
  } finally {
    for (const key of Object.keys(env)) if (saved[key] === undefined) delete process.env[key]; else process.env[key] = saved[key]
  }
}

// About 15 node processes in all (the stand-in tsc, the command line): seconds alone, minutes on a loaded machine.
t.setTimeout(300_000)

const calls = (root: string) => existsSync(path.join(root, 'tsc-calls.log'))
  ? readFileSync(path.join(root, 'tsc-calls.log'), 'utf8').split('\n').filter((line) => line !== '')
  : []
const tscCalls = (root: string) => calls(root).filter((line) => line !== 'kit').length

t.test('a missing build is made; a current one is left alone and nothing is printed', async (t) => {
  const root = layout(t)
  const first = runCli(root, ['--if-stale'])
  t.equal(first.status, 0)
  t.equal(tscCalls(root), 1, 'no dist/: tsc runs')
  t.match(first.stderr, /dist\/main\.js is missing/, 'and says why, on stderr')
  t.equal(first.stdout, '', 'nothing on stdout (npm run sessions keeps its output clean)')
  t.ok(existsSync(path.join(root, 'dist', '.build-stamp')), 'the build writes its stamp')
  t.same(calls(root), ['kit', '-p tsconfig.build.json'], 'the kit is built first: the service reads its .d.ts files')

  const again = runCli(root, ['--if-stale'])
  t.equal(again.status, 0)
  t.equal(tscCalls(root), 1, 'current: tsc does not run again')
  t.equal(again.stderr + again.stdout, '', 'and nothing is printed')
})

t.test('an edited, added or removed source file, or a changed tsconfig, makes the build stale', async (t) => {
  const root = layout(t)
  run(root, ['--if-stale'])
  const changes: Array<[string, () => void]> = [
    ['an edited file', () => writeFileSync(path.join(root, 'src', 'http', 'routes.ts'), 'export const b = 3\n')],
    ['an added file', () => writeFileSync(path.join(root, 'src', 'http', 'more.ts'), 'export const c = 4\n')],
    ['a removed file', () => rmSync(path.join(root, 'src', 'http', 'more.ts'))],
    ['an edited file of the kit', () => writeFileSync(path.join(root, 'packages', 'client', 'src', 'index.ts'), 'export const k = 2\n')],
    ['a changed tsconfig.build.json', () => writeFileSync(path.join(root, 'tsconfig.build.json'), '{ "extends": "./tsconfig.json", "x": 1 }\n')],
    ['another TypeScript version', () => writeFileSync(path.join(root, 'node_modules', 'typescript', 'package.json'), '{ "version": "5.9.4" }\n')],
    ['a deleted dist/main.js', () => rmSync(path.join(root, 'dist', 'main.js'))],
  ]
  let calls = tscCalls(root)
  for (const [what, change] of changes) {
    change()
    const result = run(root, ['--if-stale'])
    t.equal(result.status, 0)
    t.equal(tscCalls(root), calls + 1, `${what}: tsc runs once`)
    run(root, ['--if-stale'])
    t.equal(tscCalls(root), calls + 1, `${what}: and then the build is current`)
    calls = tscCalls(root)
  }
})

t.test('a file touched without a change in content does not make the build stale', async (t) => {
  const root = layout(t)
  run(root, ['--if-stale'])
  const later = new Date(Date.now() + 60_000)
  utimesSync(path.join(root, 'src', 'main.ts'), later, later)
  run(root, ['--if-stale'])
  t.equal(tscCalls(root), 1, 'the build is judged by content, not by time')
})

t.test('a failed build leaves no stamp, so the next start tries again; npm run build always compiles', async (t) => {
  const root = layout(t)
  const failed = runCli(root, ['--if-stale'], { FAKE_TSC_FAIL: '1' })
  t.equal(failed.status, 2, 'tsc\'s failure is the exit status (npm start stops there)')
  t.match(failed.stderr, /error TS2322/, 'tsc\'s messages are shown, on stderr')
  t.notOk(existsSync(path.join(root, 'dist', '.build-stamp')), 'no stamp')
  run(root, ['--if-stale'])
  t.equal(tscCalls(root), 2, 'the next start compiles again')
  t.equal(run(root, []).status, 0)
  t.equal(tscCalls(root), 3, 'without --if-stale it always compiles (npm run build)')

  writeFileSync(path.join(root, 'src', 'main.ts'), 'export const a = 2\n')
  const install = run(root, ['--install'], { FAKE_TSC_FAIL: '1' })
  t.equal(install.status, 0, 'at install a failed build is reported but does not fail npm install')
  t.match(install.stderr, /npm start will try again/)
})

t.test('at install, nothing to build without src/ or typescript (the production image)', async (t) => {
  const root = layout(t)
  rmSync(path.join(root, 'node_modules', 'typescript'), { recursive: true })
  const result = run(root, ['--install'])
  t.equal(result.status, 0)
  t.equal(result.stderr, '')
  t.notOk(existsSync(path.join(root, 'dist')), 'nothing built')
})
