// postinstall: fixes to postgres.js 3.4.9 for a database that goes away (restart, failover, pg_terminate_backend),
// found by tests/faults/db-restart.test.ts; all are upstream issues with fixes proposed but not released.
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
// 4. A socket error (ECONNRESET when the backend is terminated as a query is written) rejects the query in flight but
//    leaves it as the connection's current query: after the reconnect every new query queues behind that dead one and
//    its promise never settles, so the request holding it hangs (#1097, #1130; PR #1142). errored() now clears it.
// 5. A query sent on a reserved connection while its previous query is in flight waits in the reservation's own queue;
//    when the connection dies instead of answering, that queue is never run nor rejected (the prune's unlock after a
//    batch failed with ECONNRESET hung for ever). A reserved connection's close now rejects what waits in that queue.
// 6. Releasing a reserved connection (the prune's) whose backend was terminated puts the dead connection back among the
//    open ones: queries sent to it fail or never settle (#1199). release() now hands a connection back only if it is
//    still the reserved, live one; a closed one stays closed and is reconnected when the pool needs it.
// 7. The pool's queues (open and busy connections, waiting queries) leave a hole for every shift and only reset once
//    empty. Under sustained load one of them never empties (the busy queue, when queries are pipelined onto busy
//    connections), so its array grows by a slot per query and every remove scans all of it from the start: the driver's
//    CPU per query grows with the number of queries since the queue was last empty (here 50 -> 120 µs per query within
//    12 s). remove() now searches only the live part and shift() drops the holes once they are half of the array.
//
// Each fix is applied once (a file already carrying it is left alone); the script fails loudly if the driver's code is
// not the code it was written for.
import { readFileSync, writeFileSync, existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const pkgDir = path.join(root, 'node_modules', 'postgres')
const VERSION = '3.4.9'

// tests/faults/db-restart.test.ts looks for these markers to know the fixes are in place.
const MARKERS = [
  'session-service patch v3: closed-socket write guard',
  'session-service patch v4: errored clears the query',
  'session-service patch v5: release keeps a closed connection closed',
  'session-service patch v6: a reserved connection\'s close rejects its queue',
  'session-service patch v7: queues search and keep only their live part',
]

const CONNECTION_FIXES = [
  {
    name: 'closed-socket write guard',
    from: '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)\n',
    to: `  function nextWrite(fn) {
    // ${MARKERS[0]} (porsager/postgres#1208, #1223)
    if (!socket) {
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)
`,
    count: 1,
  },
  {
    name: 'fetch_types rejection handled',
    from: '        return fetchArrayTypes()\n',
    to: '        return fetchArrayTypes().catch(() => { /* settled by the connection error path */ })\n',
    count: 1,
  },
  {
    name: 'teardown resets write and error state',
    from: '    clearImmediate(nextWriteTimer)\n',
    to: '    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = errorResponse = null\n',
    count: 2,
  },
  {
    name: 'errored clears the query',
    from: '    query && queryError(query, err)\n',
    to: `    // ${MARKERS[1]} (porsager/postgres#1142)\n    query && (queryError(query, err), query = null)\n`,
    count: 1,
  },
]

const QUEUE_FIXES = [
  {
    name: 'remove searches only the live part of a queue',
    from: `      const index = xs.indexOf(x)
      return index === -1
        ? null
        : (xs.splice(index, 1), x)
`,
    to: `      // ${MARKERS[4]} (the slots before index were shifted out)
      const at = xs.indexOf(x, index)
      return at === -1
        ? null
        : (xs.splice(at, 1), x)
`,
    count: 1,
  },
  {
    name: 'shift drops the holes of a queue that never empties',
    from: `      } else {
        xs[index - 1] = undefined
      }
`,
    to: `      } else if (index >= 1024 && index * 2 >= xs.length) {
        xs = xs.slice(index)
        index = 0
      } else {
        xs[index - 1] = undefined
      }
`,
    count: 1,
  },
]

const POOL_FIXES = [
  {
    name: 'a reserved connection\'s close rejects its queue',
    from: '    c.reserved.release = true\n',
    to: `    c.reserved.release = true\n    // ${MARKERS[3]}\n    c.onclose = (err) => { while (queue.length) queue.shift().reject(err) }\n`,
    count: 1,
  },
  {
    name: 'release keeps a closed connection closed',
    from: '    sql.release = () => {\n      c.reserved = null\n      onopen(c)\n    }\n',
    to: `    sql.release = () => {\n      c.reserved = null\n      c.onclose = null\n      // ${MARKERS[2]} (porsager/postgres#1199)\n      c.queue === reserved && onopen(c)\n    }\n`,
    count: 1,
  },
]

function patch(file, fixes) {
  let source = readFileSync(file, 'utf8')
  const applied = []
  for (const fix of fixes) {
    if (source.includes(fix.to)) continue
    const found = source.split(fix.from).length - 1
    if (found !== fix.count) {
      throw new Error(`${file} does not contain the code the fix "${fix.name}" was written for (postgres ${VERSION}); review scripts/patch-postgres.mjs`)
    }
    source = source.split(fix.from).join(fix.to)
    applied.push(fix.name)
  }
  if (applied.length > 0) writeFileSync(file, source)
  return applied.length === 0 ? 'already patched' : `patched: ${applied.join(', ')}`
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
    for (const [name, fixes] of [['connection.js', CONNECTION_FIXES], ['index.js', POOL_FIXES], ['queue.js', QUEUE_FIXES]]) {
      const file = path.join(pkgDir, variant, name)
      console.log(`patch-postgres: ${path.relative(root, file)}: ${patch(file, fixes)}`)
    }
  }
}
