// Bounds the requests doing database work at once on this node, and how long and how many more may wait for a turn:
// past either bound a request is a 503 now, instead of piling up without limit in the pool's own queue.
import type { FastifyReply, RouteOptions } from 'fastify'
import { unavailable } from './errors.js'

export interface DbGateOptions {
  // Requests allowed to run at once: the pool size, so an admitted request never queues inside postgres.js.
  slots: number
  // Requests allowed to wait for a slot; one more is refused at once.
  queueMax: number
  // How long a request may wait for a slot before it is refused.
  queueTimeoutMs: number
  // How long an admitted handler may run before its caller gets a 503 anyway. Statement timeouts bound the database's
  // side; this bounds the driver's, should a query promise never settle. The slot stays taken until the handler settles,
  // so the pool is never oversubscribed. A route may set its own bound in its config (databaseTimeoutMs). Undefined: no
  // bound (tests of the gate alone).
  settleTimeoutMs?: number
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

// The handler the gate gave up on still runs, and may call reply.send once its database call settles: by then the 503
// has gone out, so that late send is dropped (at debug) instead of Fastify's "Reply was already sent" warning.
function abandon(reply: FastifyReply): void {
  const send = reply.send
  reply.send = function sendUnlessSent(this: FastifyReply, payload?: unknown): FastifyReply {
    if (this.sent) {
      this.log.debug('the handler the gate gave up on settled: its answer is dropped')
      return this
    }
    return send.call(this, payload)
  }
}

export function createDbGate({ slots, queueMax, queueTimeoutMs, settleTimeoutMs }: DbGateOptions): DbGate {
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

  // Handlers holding a slot, with when they were admitted and how to answer their caller should they not settle in time.
  // One sweeper checks them all while any is out, instead of a timer per request on the hot path.
  const inFlight = new Map<symbol, { deadline: number; giveUp(): void }>()
  let sweeper: NodeJS.Timeout | undefined

  function sweep(): void {
    const now = performance.now()
    for (const [id, handler] of inFlight) {
      if (now < handler.deadline) continue
      inFlight.delete(id)
      handler.giveUp()
    }
    if (inFlight.size === 0) {
      clearInterval(sweeper)
      sweeper = undefined
    }
  }

  function wrap(route: RouteOptions): void {
    const handler = route.handler
    const limitMs = route.config?.databaseTimeoutMs ?? settleTimeoutMs
    route.handler = async function gated(this: unknown, req, reply) {
      const release = await acquire()
      const work = (async () => handler.call(this as never, req, reply))()
      void work.then(release, release)
      if (settleTimeoutMs === undefined || limitMs === undefined) return work
      const id = Symbol('in flight')
      const overdue = new Promise<never>((_resolve, reject) => {
        inFlight.set(id, {
          deadline: performance.now() + limitMs,
          giveUp() {
            req.log.error({ route: route.url, settleTimeoutMs: limitMs }, 'database work did not settle in time: answering 503, its slot stays taken until it does')
            abandon(reply)
            reject(unavailable('the database did not answer in time; retry shortly'))
          },
        })
      })
      sweeper ??= setInterval(sweep, Math.max(10, settleTimeoutMs / 10))
      try {
        return await Promise.race([work, overdue])
      } finally {
        inFlight.delete(id)
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
