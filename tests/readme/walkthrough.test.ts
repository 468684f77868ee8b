// Runs the README's curl walkthrough, as printed, against a real service process and checks each answer it shows.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { createDatabase, databaseUrl } from '../helpers/db.js'
import { ROOT, startServing } from '../support/process.js'

const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8')

function walkthroughScript(): string {
  const section = README.slice(README.indexOf('## Walkthrough with curl'))
  const match = /```sh\n([\s\S]*?)```/.exec(section)
  if (match === null) throw new Error('README has no sh block under "Walkthrough with curl"')
  return match[1]
}

// "# {...}" comment lines after a command are the answers the README promises; "…" (or "…a note…") stands for any text.
function expectedAnswers(script: string): RegExp[] {
  return script.split('\n')
    .filter((line) => /^# (\{|HTTP\/|set-cookie:)/.test(line))
    .map((line) => new RegExp(`^${line.slice(2).replace(/…[^…"]*…/g, '…').split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`))
}

const hasCurl = spawnSync('curl', ['--version']).status === 0

t.test('the README walkthrough answers as printed', { skip: hasCurl ? false : 'curl is not installed: install curl to run the README walkthrough test' }, async (t) => {
  const name = await createDatabase(t)
  const service = await startServing(t, { DATABASE_URL: databaseUrl(name), API_KEYS: 'app:dev-app-secret-0123456789' })
  const script = walkthroughScript().replace(/^BASE=.*$/m, `BASE=${service.base}`)
  t.not(script, walkthroughScript(), 'the script sets BASE')
  // Each curl answer on a line of its own, as the README shows them.
  const run = spawnSync('bash', ['-e', '-c', `curl() { command curl "$@"; echo; }\n${script}`], { encoding: 'utf8', timeout: 30_000 })
  t.equal(run.status, 0, run.stderr)
  const lines = run.stdout.split('\n').map((line) => line.trim()).filter((line) => line !== '')
  const expected = expectedAnswers(walkthroughScript())
  t.equal(expected.length, 7, 'the walkthrough promises seven answers')
  t.equal(lines.length, expected.length, run.stdout)
  expected.forEach((pattern, i) => t.match(lines[i], pattern, `answer ${i + 1}`))
})
