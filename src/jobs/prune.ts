// Records the end of sessions that ran out of time, then deletes sessions and audit events past SESSION_RETENTION; bounded batches, one node at a time.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fastifyCronModule, { type Config as CronOptions } from 'fastify-cron'
import type { Config } from '../config.js'
import type { Sql } from '../db.js'
import * as audit from '../audit/store.js'
import type { Metrics } from '../metrics.js'
import * as store from '../sessions/store.js'

// fastify-cron is CommonJS with exports.default; under NodeNext the default import is the module object.
const fastifyCron = (fastifyCronModule as unknown as { default: FastifyPluginAsync<CronOptions> }).default

export const PRUNE_LOCK_ID = 7_210_002
export const PRUNE_BATCH = 5000

export interface PruneResult {
  ran: boolean
  endedRecorded: number
  sessions: number
  events: number
  // Everything due was handled; false when the budget ran out first (the next run goes on from there).
  done: boolean
}

export interface PruneOptions {
  // Start no batch once this long has passed since the run began (POST /v1/admin/prune: an answer within the request's
  // bound). Undefined: run until nothing is due (the cron job).
  budgetMs?: number
}

// One reserved connection holds the session-level advisory lock for the whole run and runs every batch, each committing
// on its own; it takes a single pool connection, so pruning can never wait on the pool it is holding.
export async function prune(sql: Sql, config: Pick<Config, 'retention'>, metrics: Metrics, { budgetMs }: PruneOptions = {}): Promise<PruneResult> {
  const deadline = budgetMs === undefined ? Infinity : performance.now() + budgetMs
  const counts = { endedRecorded: 0, sessions: 0, events: 0 }
  // Runs a bounded statement until it handles less than a full batch (true), or the budget is spent (false).
  async function inBatches(kind: keyof typeof counts, runBatch: () => Promise<number>): Promise<boolean> {
    for (;;) {
      if (performance.now() >= deadline) return false
      const handled = await runBatch()
      counts[kind] += handled
      if (handled < PRUNE_BATCH) return true
    }
  }
  const connection = await sql.reserve()
  try {
    const [{ locked }] = await connection<{ locked: boolean }[]>`select pg_try_advisory_lock(${PRUNE_LOCK_ID}) as locked`
    if (!locked) {
      metrics.pruneRuns.inc({ result: 'skipped' })
      return { ran: false, endedRecorded: 0, sessions: 0, events: 0, done: false }
    }
    const stopTimer = metrics.pruneDuration.startTimer()
    try {
      let afterEventId = '0'
      const done = await inBatches('endedRecorded', () => store.recordTimeEnded(connection, PRUNE_BATCH))
        && await inBatches('sessions', () => store.deleteEndedBefore(connection, config.retention, PRUNE_BATCH))
        && await inBatches('events', async () => {
          const deleted = await audit.deleteEventsBefore(connection, config.retention, afterEventId, PRUNE_BATCH)
          afterEventId = deleted.lastId ?? afterEventId
          return deleted.count
        })
      metrics.pruneRuns.inc({ result: 'ran' })
      metrics.pruneRows.inc({ kind: 'ended_recorded' }, counts.endedRecorded)
      metrics.pruneRows.inc({ kind: 'sessions' }, counts.sessions)
      metrics.pruneRows.inc({ kind: 'events' }, counts.events)
      return { ran: true, ...counts, done }
    } finally {
      stopTimer()
      await connection`select pg_advisory_unlock(${PRUNE_LOCK_ID})`
    }
  } finally {
    connection.release()
  }
}

export async function registerPruneJob(app: FastifyInstance, sql: Sql, config: Pick<Config, 'retention' | 'pruneCron'>, metrics: Metrics): Promise<void> {
  await app.register(fastifyCron, {
    jobs: [{
      name: 'prune',
      cronTime: config.pruneCron,
      startWhenReady: true,
      onTick: async () => {
        try {
          const result = await prune(sql, config, metrics)
          if (result.ran) app.log.info(result, 'pruned ended sessions')
          else app.log.debug('prune skipped: another node is pruning')
        } catch (err) {
          app.log.warn({ err }, 'prune failed; it runs again on the next tick')
        }
      },
    }],
  })
}
