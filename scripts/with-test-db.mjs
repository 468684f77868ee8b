// Runs a command (the test suite) against DATABASE_URL, or against a fresh embedded
// Postgres when DATABASE_URL is unset. Usage: node scripts/with-test-db.mjs <command> [args...]
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { constants as osConstants } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const [command, ...args] = process.argv.slice(2)
if (!command) {
  console.error('usage: node scripts/with-test-db.mjs <command> [args...]')
  process.exit(2)
}

let child
let db
let interrupted

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    interrupted ??= sig
    if (child) child.kill(sig)
  })
}

function runCommand(env) {
  const binDir = path.join(root, 'node_modules', '.bin')
  return new Promise((resolve) => {
    child = spawn(command, args, {
      cwd: root,
      stdio: 'inherit',
      shell: false,
      env: { ...env, PATH: [binDir, env.PATH].filter(Boolean).join(path.delimiter) },
    })
    child.on('error', (err) => {
      console.error(`cannot run ${command}: ${err.message}`)
      resolve(127)
    })
    child.on('exit', (code, signal) => resolve(code ?? 128 + (osConstants.signals[signal] ?? 1)))
  })
}

async function main() {
  if (process.env.DATABASE_URL) return runCommand(process.env)

  console.log('Running against an embedded Postgres (set DATABASE_URL to use your own server instead).')
  const dataDir = path.join(root, '.data', 'test-db')
  fs.rmSync(dataDir, { recursive: true, force: true })
  fs.mkdirSync(dataDir, { recursive: true })
  const logStream = fs.createWriteStream(path.join(root, '.data', 'test-db.log'))

  try {
    const { startEmbeddedDb } = await import('../dist/embedded-db.js')
    const started = Date.now()
    db = await startEmbeddedDb({
      dataDir,
      port: Number(process.env.TEST_EMBEDDED_DB_PORT ?? 15433),
      log: (line) => logStream.write(`${line}\n`),
    })
    console.log(`embedded database ready in ${Date.now() - started} ms`)
    if (interrupted) return 128 + osConstants.signals[interrupted]
    return await runCommand({ ...process.env, DATABASE_URL: db.url })
  } catch (err) {
    console.error(`embedded database failed: ${err instanceof Error ? err.message : err}`)
    console.error(`(log: ${path.join(root, '.data', 'test-db.log')})`)
    return 1
  } finally {
    await db?.stop().catch((err) => console.error(`stopping the embedded database failed: ${err.message}`))
    await new Promise((resolve) => logStream.end(resolve))
  }
}

process.exitCode = await main()
