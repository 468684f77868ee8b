// `npm start` on the embedded database, then SIGTERM: the pool and the change feed close before the embedded server stops,
// so no connection is terminated under them ("terminating connection due to administrator command") and nothing reconnects.
import { existsSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { ensureBuilt, freePort, startService } from '../support/process.js'

// Starting a fresh embedded server (initdb) takes a few seconds, many more on a busy machine.
t.setTimeout(240_000)

t.test('SIGTERM on the embedded database: the pool and the feed end first, no connection is killed, exit 0', async (t) => {
  await ensureBuilt(t)
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'embedded-shutdown-'))
  await fs.chmod(dataDir, 0o755) // when root, the postgres OS user must reach it
  t.teardown(async () => {
    // Should the service have died without stopping its server, stop that server (ours: its pid is in our data directory).
    const pidFile = path.join(dataDir, 'pg', 'postmaster.pid')
    if (existsSync(pidFile)) {
      try { process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 'SIGQUIT') } catch { /* already gone */ }
    }
    await fs.rm(dataDir, { recursive: true, force: true })
  })
  const port = await freePort()
  const service = startService(t, {
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: dataDir,
    EMBEDDED_DB_PORT: String(16000 + Math.floor(Math.random() * 1000)),
    LOG_LEVEL: 'debug',
  }, { port })
  await service.waitUntilServing(180_000)
  const created = await fetch(`${service.base}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 'u' }) })
  t.equal(created.status, 201)
  // The change feed listens: its connection is one of those that must close before the server stops.
  for (let i = 0; i < 100 && !service.logLines().some((line) => line.msg === 'change feed listening'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(service.logLines().some((line) => line.msg === 'change feed listening'), 'the change feed was listening')

  service.child.kill('SIGTERM')
  const exit = await service.waitForExit(30_000)
  t.same(exit, { code: 0, signal: null }, 'exits 0')
  const lines = service.logLines()
  const shutdownAt = lines.findIndex((line) => line.msg === 'shutting down')
  t.ok(shutdownAt >= 0, 'logged the shutdown')
  const after = lines.slice(shutdownAt)
  const postgresSaid = after.map((line) => String(line.postgres ?? ''))
  t.same(postgresSaid.filter((line) => /terminating connection due to administrator command|the database system is shutting down/.test(line)), [],
    'the embedded server terminated no connection and refused none')
  t.same(after.filter((line) => Number(line.level) >= 40).map((line) => line.msg), [], 'no warning or error while closing')
  t.ok(postgresSaid.some((line) => /database system is shut down/.test(line)), 'the embedded server did stop')
})
