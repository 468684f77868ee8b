// postgres.js's pool queues, as patched by scripts/patch-postgres.mjs (fix v7): a queue that never empties (connections
// pipelined onto busy ones under sustained load) must not make each remove scan every slot it ever held.
import path from 'node:path'
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { ROOT } from '../support/process.js'

interface Queue<T> { readonly length: number; push(x: T): T; shift(): T; remove(x: T): T | null }

async function loadQueue(): Promise<<T>(initial?: T[]) => Queue<T>> {
  const module = await import(pathToFileURL(path.join(ROOT, 'node_modules', 'postgres', 'src', 'queue.js')).href) as { default: <T>(initial?: T[]) => Queue<T> }
  return module.default
}

// Counts the array slots Array.prototype.indexOf looks at while fn runs.
function slotsScanned(fn: () => void): number {
  const original = Array.prototype.indexOf
  let scanned = 0
  Array.prototype.indexOf = function (this: unknown[], value: unknown, from = 0) {
    scanned += this.length - from
    return original.call(this, value, from)
  }
  try {
    fn()
  } finally {
    Array.prototype.indexOf = original
  }
  return scanned
}

t.test('the fix is installed in both module builds', async (t) => {
  for (const variant of ['src', 'cjs/src']) {
    const source = readFileSync(path.join(ROOT, 'node_modules', 'postgres', variant, 'queue.js'), 'utf8')
    t.match(source, /session-service patch v7:/, `node_modules/postgres/${variant}/queue.js has fix v7 (run npm install)`)
  }
})

t.test('a busy queue that never empties: each move scans the live connections only, and order is kept', async (t) => {
  const Queue = await loadQueue()
  const connections = Array.from({ length: 10 }, (_, i) => `c${i}`)
  const busy = Queue(connections)
  const cycles = 20_000
  const served: string[] = []
  // The pool's pipelining path: take the longest-busy connection, give it one more query, and move it to the back of busy.
  const scanned = slotsScanned(() => {
    for (let i = 0; i < cycles; i++) {
      const c = busy.shift()
      served.push(c)
      busy.remove(c)
      busy.push(c)
    }
  })
  t.equal(busy.length, connections.length, 'still the ten connections')
  t.same(served.slice(-connections.length), connections, 'served round-robin, in order')
  // Unpatched, the n-th remove scans all n slots ever shifted: about cycles² / 2 = 200,000,000 in all.
  t.ok(scanned <= cycles * connections.length, `${scanned} slots scanned for ${cycles} moves (at most ${connections.length} each)`)
})

t.test('remove still finds and takes out a queued item, and FIFO order holds across compactions', async (t) => {
  const Queue = await loadQueue()
  const queue = Queue<number>()
  for (let i = 0; i < 5000; i++) queue.push(i)
  const shifted = Array.from({ length: 3000 }, () => queue.shift())
  t.same(shifted.slice(0, 3), [0, 1, 2])
  t.equal(queue.remove(2999), null, 'an item already shifted out is not found')
  t.equal(queue.remove(4000), 4000, 'a queued item is removed')
  t.equal(queue.remove(4000), null, 'once')
  t.equal(queue.length, 1999)
  const rest: number[] = []
  while (queue.length > 0) rest.push(queue.shift())
  t.same(rest, Array.from({ length: 2000 }, (_, i) => 3000 + i).filter((n) => n !== 4000), 'the rest comes out in order')
})
