// Opens the postgres.js pool for the configured database (or the embedded one when DATABASE_URL is unset).
import { randomInt } from 'node:crypto'
import postgres from 'postgres'
import type { Config } from './config.js'
import { isConflict } from './errors.js'

export type Sql = postgres.Sql
export type Db = postgres.Sql | postgres.TransactionSql | postgres.ReservedSql

export const APPLICATION_NAME = 'session-service'

export function connect(url: string, config: Pick<Config, 'databasePoolMax' | 'databaseConnectTimeout' | 'databaseStatementTimeoutMs'>): Sql {
  return retryingConflicts(postgres(url, {
    max: config.databasePoolMax,
    connect_timeout: config.databaseConnectTimeout,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    prepare: true,
    // postgres.js waits before reconnecting after failed connects, growing to 20 s by default: queries wait that long
    // during an outage and the pool comes back that late after one. Capped at 0.5 s, an outage gives fast 503s and recovery within a second.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 0.5),
    onnotice: () => {},
    connection: {
      application_name: APPLICATION_NAME,
      // A stuck query must fail fast into a 503, never hold a request open.
      statement_timeout: config.databaseStatementTimeoutMs,
      idle_in_transaction_session_timeout: config.databaseStatementTimeoutMs * 2,
    },
  }))
}

// A transaction the database aborted as a deadlock victim (40P01) or for a serialization failure (40001) has changed
// nothing: sql.begin runs it once more, whole, before the error reaches the caller (and becomes a 503). Every caller of
// sql.begin gets this, so no write path can forget it.
export function retryingConflicts(sql: Sql): Sql {
  const begin = sql.begin.bind(sql) as (...args: unknown[]) => Promise<unknown>
  const retrying = async (...args: unknown[]) => {
    try {
      return await begin(...args)
    } catch (err) {
      if (!isConflict(err)) throw err
      // A moment's pause lets the transaction that won the conflict commit first.
      await new Promise((resolve) => setTimeout(resolve, randomInt(10, 50)))
      return begin(...args)
    }
  }
  sql.begin = retrying as Sql['begin']
  return sql
}
