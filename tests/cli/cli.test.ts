// The ops command line as a real process against the test database.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import t from 'tap'
import { setup } from '../helpers/app.js'
import { createSession, validate } from '../helpers/sessions.js'
import { ensureBuilt, ROOT } from '../support/process.js'

const CLI = path.join(ROOT, 'dist', 'cli.js')

function sessions(url: string, ...args: string[]) {
  const run = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: url, LOG_LEVEL: 'silent' },
  })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

t.test('the sessions CLI', async (t) => {
  await ensureBuilt(t)
  const { app, sql, url } = await setup(t)
  const kept = await createSession(app, { userId: 'alice', ip: '203.0.113.9', userAgent: 'Firefox' })
  const other = await createSession(app, { userId: 'alice' })
  const third = await createSession(app, { userId: 'alice' })
  const bob = await createSession(app, { userId: 'bob' })

  t.test('list --user prints a table of the active sessions, never a token', async (t) => {
    const run = sessions(url, 'list', '--user', 'alice')
    t.equal(run.status, 0, run.stderr)
    const lines = run.stdout.trim().split('\n')
    t.match(lines[0], /^id\s+policy\s+createdAt\s+lastSeenAt\s+idleExpiresAt\s+ip\s+userAgent$/)
    t.equal(lines.length, 2 + 3)
    t.match(run.stdout, kept.session.id)
    t.match(run.stdout, /203\.0\.113\.9\s+Firefox/)
    for (const { token } of [kept, other, third]) t.notMatch(run.stdout, token)
  })

  t.test('list --json prints the sessions as JSON', async (t) => {
    const run = sessions(url, 'list', '--user', 'alice', '--json')
    t.equal(run.status, 0, run.stderr)
    const { sessions: list } = JSON.parse(run.stdout) as { sessions: Array<{ id: string; userId: string }> }
    t.same(list.map((s) => s.id), [third.session.id, other.session.id, kept.session.id])
  })

  t.test('revoke --user --except ends the others with the reason, actor cli', async (t) => {
    const run = sessions(url, 'revoke', '--user', 'alice', '--except', kept.session.id, '--reason', 'password_change', '--json')
    t.equal(run.status, 0, run.stderr)
    t.same(JSON.parse(run.stdout), { revoked: 2 })
    t.equal((await validate(app, kept.token)).statusCode, 200)
    t.match((await validate(app, other.token)).json(), { error: { reason: 'revoked', revokeReason: 'password_change' } })
    const [{ count }] = await sql<{ count: number }[]>`select count(*)::int as count from audit_events where type = 'revoked' and actor = 'cli'`
    t.equal(count, 2)
  })

  t.test('revoke --session ends one session; an unknown id fails with exit 1', async (t) => {
    const run = sessions(url, 'revoke', '--session', bob.session.id)
    t.equal(run.status, 0, run.stderr)
    t.match(run.stdout, `revoked ${bob.session.id}`)
    t.match((await validate(app, bob.token)).json(), { error: { revokeReason: 'admin' } })
    const unknown = sessions(url, 'revoke', '--session', 's_00000000000000000000000000')
    t.equal(unknown.status, 1)
    t.match(unknown.stderr, /no session with this id/)
  })

  t.test('stats and prune', async (t) => {
    const stats = sessions(url, 'stats', '--json')
    t.equal(stats.status, 0, stats.stderr)
    t.match(JSON.parse(stats.stdout), { active: 1, revoked: 3, byPolicy: { default: 1 }, revokedByReason: { password_change: 2, admin: 1 } })
    const human = sessions(url, 'stats')
    t.match(human.stdout, /^active\s+activeUsers\s+revoked\s+expired\s+idleTimeout/)
    const pruned = sessions(url, 'prune')
    t.equal(pruned.status, 0, pruned.stderr)
    t.match(pruned.stdout, /^recorded 0 time-ended sessions; deleted 0 sessions and 0 events/)
  })

  t.test('usage errors exit 2 with the usage text', async (t) => {
    const bad = sessions(url, 'frobnicate')
    t.equal(bad.status, 2)
    t.match(bad.stderr, /unknown command "frobnicate"[\s\S]*usage: sessions/)
    const missing = sessions(url, 'list')
    t.equal(missing.status, 2)
    t.match(missing.stderr, /--user is required/)
  })
})
