// Resolves where the database is: DATABASE_URL, or the embedded server under DATA_DIR that this process starts and stops.
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from './config.js'
import { connect, type Sql } from './db.js'
import { runningEmbeddedDbUrl, startEmbeddedDb } from './embedded-db.js'

export interface Database {
  sql: Sql
  url: string
  embedded: boolean
  // Stops the embedded server, if any; call after the pool has ended.
  stop(): Promise<void>
}

export async function openDatabase(config: Config, log: Pick<FastifyBaseLogger, 'info' | 'debug'>, opts: { reuseRunningEmbedded?: boolean } = {}): Promise<Database> {
  if (config.databaseUrl !== undefined) {
    return { sql: connect(config.databaseUrl, config), url: config.databaseUrl, embedded: false, stop: async () => {} }
  }
  const running = opts.reuseRunningEmbedded ? await runningEmbeddedDbUrl(config.dataDir, config.embeddedDbPort) : undefined
  if (running !== undefined) {
    log.debug({ dataDir: config.dataDir }, 'using the running embedded database')
    return { sql: connect(running, config), url: running, embedded: true, stop: async () => {} }
  }
  const startedAt = Date.now()
  const embedded = await startEmbeddedDb({
    dataDir: config.dataDir,
    port: config.embeddedDbPort,
    log: (line) => log.debug({ postgres: line }, 'embedded database'),
  })
  log.info({ dataDir: config.dataDir, port: config.embeddedDbPort, startMs: Date.now() - startedAt }, 'embedded database started (DATABASE_URL is unset)')
  return { sql: connect(embedded.url, config), url: embedded.url, embedded: true, stop: () => embedded.stop() }
}
