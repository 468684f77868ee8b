// `npm run bench` works on a checkout: a tiny run on DATABASE_URL's server prints the table and the targets and writes its
// JSON, every scenario answering without errors. It measures nothing (the suite runs in parallel): figures are in the README.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { serverUrl } from '../helpers/db.js'
import { ensureBuilt, ROOT } from '../support/process.js'

// The run takes about 40 s alone; beside the rest of the suite on two cores it may take twice that.
t.setTimeout(240_000)

interface Scenario { reqPerSec: number; errors: number; non2xx: number; rounds: unknown[] }
interface Report { scenarios: Record<string, Scenario>; targets: unknown[]; revocation: { trials: number; withinMs100: number } }

t.test('a small bench run prints the table and the targets and writes its JSON', async (t) => {
  await ensureBuilt(t)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const json = path.join(dir, 'results.json')
  const scenarios = ['ceiling-one-read', 'validate-nocache', 'validate-cache', 'create', 'revoke']
  // Four connections: enough to exercise the load generator, light enough for the test files running beside it.
  const args = ['bench/run.mjs', '--rows', '10000', '--connections', '4', '--duration', '1', '--warmup', '0', '--only', scenarios.join(','), '--revocation-trials', '5', '--json', json, '--max-minutes', '3']
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, DATABASE_URL: serverUrl() }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  if (code !== 0) t.comment(out.slice(-3000))
  t.equal(code, 0, 'the bench exits 0')

  t.match(out, /^scenario\s+req\/s/m, 'prints the results table')
  t.match(out, /^Targets \(ratios within this run\)/m, 'and the targets')
  t.match(out, /validate \(no cache\) \/ ceiling 2, req\/s: [\d.]+ \(target >= 0\.85\)/, 'with the validate ratio computed')
  const report = JSON.parse(readFileSync(json, 'utf8')) as Report
  t.same(Object.keys(report.scenarios).sort(), [...scenarios].sort(), 'the JSON holds every scenario run')
  for (const name of scenarios) {
    const scenario = report.scenarios[name]
    t.ok(scenario.reqPerSec > 0, `${name}: answered requests`)
    t.equal(scenario.errors, 0, `${name}: no errors`)
    t.equal(scenario.non2xx, 0, `${name}: no unexpected status`)
  }
  t.equal(report.revocation.trials, 5, 'every revocation trial ended with the other node refusing the token')
  t.ok(report.targets.length > 0, 'the targets are in the JSON')
})
