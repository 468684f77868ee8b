// Opens the postgres.js pool for the configured database (or the embedded one when DATABASE_URL is unset).
import postgres from 'postgres'
import type { Config } from './config.js'

export type Sql = postgres.Sql
export type Db = postgres.Sql | postgres.TransactionSql | postgres.ReservedSql

export const APPLICATION_NAME = 'session-service'

export function connect(url: string, config: Pick<Config, 'databasePoolMax' | 'databaseConnectTimeout' | 'databaseStatementTimeoutMs'>): Sql {
  return postgres(url, {
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
  })
}
