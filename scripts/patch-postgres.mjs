// postinstall: two fixes to postgres.js 3.4.9 for a database that goes away (restart, failover, pg_terminate_backend),
// found by tests/faults/db-restart.test.ts; both are upstream issues with fixes proposed but not released.
//
// 1. A small write deferred with setImmediate can run after the socket was set to null, throwing
//    `TypeError: Cannot read properties of null (reading 'write')` outside any query: the process dies
//    (porsager/postgres#1066, #1154, #1208; PRs #1168, #1176, #1209). The guard settles the write with CONNECTION_CLOSED.
// 2. Teardown leaves the deferred-write state and the last ErrorResponse behind: a pooled connection would never flush
//    small writes again (#1208), and after it reconnects its first query fails with the old connection's error,
//    e.g. 57P01 seconds after the database is back (#1223). Teardown now resets both.
// 3. The array-type query that starts each new connection (fetch_types) is not awaited: when the connection fails
//    under it, its rejection is unhandled and ends the process (#1223). The connection's error path already settles
//    the waiting query, so that rejection is dropped.
//
// Idempotent; fails loudly if the driver's code is not the code it was written for.
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const pkgDir = path.join(root, 'node_modules', 'postgres')
const MARKER = 'session-service patch v3: closed-socket write guard'
const VERSION = '3.4.9'

const NEXT_WRITE = '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)\n'
const GUARDED = `  function nextWrite(fn) {
    // ${MARKER} (porsager/postgres#1208, #1223)
    if (!socket) {
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)
`
const FETCH_TYPES = '        return fetchArrayTypes()\n'
const FETCH_TYPES_CAUGHT = '        return fetchArrayTypes().catch(() => { /* settled by the connection error path */ })\n'
const TEARDOWN = '    clearImmediate(nextWriteTimer)\n'
const RESET = '    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = errorResponse = null\n'

function patch(file) {
  const source = readFileSync(file, 'utf8')
  if (source.includes(MARKER)) return 'already patched'
  const teardowns = source.split(TEARDOWN).length - 1
  if (!source.includes(NEXT_WRITE) || teardowns !== 2 || source.split(FETCH_TYPES).length !== 2) {
    throw new Error(`${file} does not contain the code this patch was written for (postgres ${VERSION}); review scripts/patch-postgres.mjs`)
  }
  writeFileSync(file, source.replace(NEXT_WRITE, GUARDED).replace(FETCH_TYPES, FETCH_TYPES_CAUGHT).split(TEARDOWN).join(RESET))
  return 'patched'
}

if (!existsSync(pkgDir)) {
  console.log('patch-postgres: postgres is not installed, nothing to do')
} else {
  const { version } = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))
  if (version !== VERSION) {
    console.error(`patch-postgres: postgres ${version} is installed, this patch is for ${VERSION}; check whether the upstream fix landed and update or remove scripts/patch-postgres.mjs`)
    process.exit(1)
  }
  for (const variant of ['src', 'cjs/src', 'cf/src']) {
    const file = path.join(pkgDir, variant, 'connection.js')
    console.log(`patch-postgres: ${path.relative(root, file)}: ${patch(file)}`)
  }
}
