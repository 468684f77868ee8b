// Bounds the requests doing database work at once on this node, and how long and how many more may wait for a turn:
// past either bound a request is a 503 now, instead of piling up without limit in the pool's own queue.
import type { RouteOptions } from 'fastify'
import { unavailable } from './errors.js'

export interface DbGateOptions {
  // Requests allowed to run at once: the pool size, so an admitted request never queues inside postgres.js.
  slots: number
  // Requests allowed to wait for a slot; one more is refused at once.
  queueMax: number
  // How long a request may wait for a slot before it is refused.
  queueTimeoutMs: number
}

export interface DbGate {
  // Resolves with a release function once a slot is free; rejects with 503 unavailable when the wait is over a bound.
  acquire(): Promise<() => void>
  // An onRoute hook body: the route's handler runs holding a slot.
  wrap(route: RouteOptions): void
  readonly running: number
  readonly waiting: number
}

interface Waiter {
  grant(release: () => void): void
  timer: NodeJS.Timeout
}

const busy = () => unavailable('the database is busy; retry shortly')

export function createDbGate({ slots, queueMax, queueTimeoutMs }: DbGateOptions): DbGate {
  let running = 0
  const queue: Waiter[] = []

  function releaser(): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      // The slot passes straight to the longest waiter, so a newcomer can never overtake the queue.
      const next = queue.shift()
      if (next === undefined) {
        running -= 1
        return
      }
      clearTimeout(next.timer)
      next.grant(releaser())
    }
  }

  function acquire(): Promise<() => void> {
    if (running < slots) {
      running += 1
      return Promise.resolve(releaser())
    }
    if (queue.length >= queueMax || queueTimeoutMs === 0) return Promise.reject(busy())
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: resolve,
        timer: setTimeout(() => {
          queue.splice(queue.indexOf(waiter), 1)
          reject(busy())
        }, queueTimeoutMs),
      }
      queue.push(waiter)
    })
  }

  function wrap(route: RouteOptions): void {
    const handler = route.handler
    route.handler = async function gated(this: unknown, req, reply) {
      const release = await acquire()
      try {
        return await handler.call(this as never, req, reply)
      } finally {
        release()
      }
    }
  }

  return {
    acquire,
    wrap,
    get running() { return running },
    get waiting() { return queue.length },
  }
}
