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
}

// Runs a bounded statement until it handles less than a full batch; each statement is its own transaction.
async function inBatches(runBatch: () => Promise<number>): Promise<number> {
  let total = 0
  for (;;) {
    const handled = await runBatch()
    total += handled
    if (handled < PRUNE_BATCH) return total
  }
}

// One reserved connection holds the session-level advisory lock for the whole run and runs every batch, each committing
// on its own; it takes a single pool connection, so pruning can never wait on the pool it is holding.
export async function prune(sql: Sql, config: Pick<Config, 'retention'>, metrics: Metrics): Promise<PruneResult> {
  const connection = await sql.reserve()
  try {
    const [{ locked }] = await connection<{ locked: boolean }[]>`select pg_try_advisory_lock(${PRUNE_LOCK_ID}) as locked`
    if (!locked) {
      metrics.pruneRuns.inc({ result: 'skipped' })
      return { ran: false, endedRecorded: 0, sessions: 0, events: 0 }
    }
    const stopTimer = metrics.pruneDuration.startTimer()
    try {
      const endedRecorded = await inBatches(() => store.recordTimeEnded(connection, PRUNE_BATCH))
      const sessions = await inBatches(() => store.deleteEndedBefore(connection, config.retention, PRUNE_BATCH))
      const events = await inBatches(() => audit.deleteEventsBefore(connection, config.retention, PRUNE_BATCH))
      metrics.pruneRuns.inc({ result: 'ran' })
      metrics.pruneRows.inc({ kind: 'ended_recorded' }, endedRecorded)
      metrics.pruneRows.inc({ kind: 'sessions' }, sessions)
      metrics.pruneRows.inc({ kind: 'events' }, events)
      return { ran: true, endedRecorded, sessions, events }
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
