// postgres.js's pool queue (the queries waiting for a connection): a queue that never empties under sustained load must
// not make each remove scan, nor its array keep, every slot it ever held. postgres 3.4.9's queue did both (its CPU per
// query grew with the queries since the queue was last empty; fixed then by a postinstall rewrite of its queue.js);
// 4.1.0's Queue (src/pool.js) searches from its head and drops the shifted slots.
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { ROOT } from '../support/process.js'

interface Queue<T> { readonly length: number; push(x: T): number; shift(): T; peek(): T; remove(fn: (x: T) => boolean): boolean }

async function loadQueue(): Promise<<T>() => Queue<T>> {
  const module = await import(pathToFileURL(path.join(ROOT, 'node_modules', 'postgres', 'src', 'pool.js')).href) as { Queue: <T>() => Queue<T> }
  return module.Queue
}

t.test('a queue that never empties: each remove looks at the live items only, and order is kept', async (t) => {
  const Queue = await loadQueue()
  const queue = Queue<number>()
  const live = 10
  for (let i = 0; i < live; i++) queue.push(i)
  const cycles = 20_000
  const served: number[] = []
  let looked = 0
  let missed = 0
  // The pool's pattern under load: the oldest waiting query is served, one more arrives, and one waiting query is
  // withdrawn (cancelled or timed out) while it waits.
  for (let i = 0; i < cycles; i++) {
    served.push(queue.shift())
    queue.push(live + 2 * i)
    queue.push(live + 2 * i + 1)
    const target = live + 2 * i + 1
    if (!queue.remove((x) => { looked++; return x === target })) missed++
  }
  t.equal(missed, 0, 'every remove finds its item')
  t.equal(queue.length, live, 'still ten waiting')
  t.same(served.slice(0, live), Array.from({ length: live }, (_, i) => i), 'served in order')
  // Searching from the array's start instead of its head: the n-th remove looks at about n slots, cycles² / 2 in all.
  t.ok(looked <= cycles * (live + 2), `${looked} items looked at for ${cycles} removes (at most ${live + 2} each)`)
})

t.test('remove still finds and takes out a queued item, and FIFO order holds across compactions', async (t) => {
  const Queue = await loadQueue()
  const queue = Queue<number>()
  for (let i = 0; i < 5000; i++) queue.push(i)
  const shifted = Array.from({ length: 3000 }, () => queue.shift())
  t.same(shifted.slice(0, 3), [0, 1, 2])
  t.equal(queue.remove((x) => x === 2999), false, 'an item already shifted out is not found')
  t.equal(queue.remove((x) => x === 4000), true, 'a queued item is removed')
  t.equal(queue.remove((x) => x === 4000), false, 'once')
  t.equal(queue.length, 1999)
  const rest: number[] = []
  while (queue.length > 0) rest.push(queue.shift())
  t.same(rest, Array.from({ length: 2000 }, (_, i) => 3000 + i).filter((n) => n !== 4000), 'the rest comes out in order')
})
