// Follows GET /v1/revocations in the background (long-poll): reports each revocation, restarts on 410, backs off on errors, stops on demand.
import { backoffDelayMs } from './backoff.js'
import type { SessionServiceClient } from './index.js'
import { isSessionServiceError } from './errors.js'
import type { Revocation } from './types.js'

export type FollowerState = 'starting' | 'following' | 'backing_off' | 'stopped'

export interface FollowerHandlers {
  // The feed has a position: anything cached before it may have missed revocations.
  onPosition(cursor: string): void
  onRevocations(revocations: Revocation[]): void
  // 410 cursor_expired: revocations were missed; flush, the follower starts again without `since`.
  onCursorExpired(): void
  onError(err: unknown, delayMs: number): void
}

export interface FollowerOptions {
  waitSeconds: number
  // Backoff after errors: base · 2^(failures-1) with jitter, at most maxDelayMs.
  baseDelayMs?: number | undefined
  maxDelayMs?: number | undefined
}

export interface Follower {
  readonly state: FollowerState
  readonly cursor: string | undefined
  stop(): Promise<void>
}

export function followRevocations(client: SessionServiceClient, options: FollowerOptions, handlers: FollowerHandlers): Follower {
  const stopping = new AbortController()
  const baseDelayMs = options.baseDelayMs ?? 250
  const maxDelayMs = options.maxDelayMs ?? 10_000
  let state: FollowerState = 'starting'
  let cursor: string | undefined
  let failures = 0

  const pause = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      stopping.signal.removeEventListener('abort', done)
      resolve()
    }
    stopping.signal.addEventListener('abort', done, { once: true })
  })

  async function run(): Promise<void> {
    while (!stopping.signal.aborted) {
      try {
        // The long-poll has its own timeout (wait + 10 s) and is not retried by the client: this loop decides.
        // After a failure the first request does not wait: the state says following as soon as the service answers again,
        // and what was revoked during the outage arrives at once.
        const query = cursor === undefined ? {} : { since: cursor, wait: failures > 0 ? 0 : options.waitSeconds }
        const page = await client.revocations(query, { signal: stopping.signal, retries: 0 })
        if (cursor === undefined) handlers.onPosition(page.nextCursor)
        if (page.revocations.length > 0) handlers.onRevocations(page.revocations)
        cursor = page.nextCursor
        state = 'following'
        failures = 0
      } catch (err) {
        if (stopping.signal.aborted) break
        failures++
        if (isSessionServiceError(err) && err.code === 'cursor_expired') {
          cursor = undefined
          state = 'starting'
          handlers.onCursorExpired()
          // A start without `since` never answers 410; only a second one in a row (a confused proxy) waits.
          if (failures === 1) continue
        }
        const delayMs = backoffDelayMs(failures, baseDelayMs, maxDelayMs)
        state = 'backing_off'
        handlers.onError(err, delayMs)
        await pause(delayMs)
      }
    }
    state = 'stopped'
  }

  const running = run()
  return {
    get state() {
      return state
    },
    get cursor() {
      return cursor
    },
    async stop() {
      stopping.abort()
      await running
    },
  }
}
