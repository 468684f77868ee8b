// Entry point: load config, open the database, migrate, build, listen; close gracefully on SIGTERM/SIGINT.
import type { LoggerOptions } from 'pino'
import { loadConfigOrExit } from './config.js'
import { checkDriverOrExit } from './driver.js'

const GRACE_MS = 10_000

// Read before the rest of the service is loaded (Fastify, pino, the driver: most of the start-up time), so that a bad
// configuration is reported at once.
const config = loadConfigOrExit(process.env)
checkDriverOrExit()

const [{ default: closeWithGrace }, { default: pino }, { openDatabase }, { loggerOptions }, { migrate }, { buildServer }] = await Promise.all([
  import('close-with-grace'), import('pino'), import('./database.js'), import('./logger.js'), import('./migrate.js'), import('./server.js'),
])

const logger = pino(loggerOptions(config) as LoggerOptions)
const database = await openDatabase(config, logger).catch((err: Error) => {
  logger.fatal({ err: { message: err.message } }, 'could not open the database')
  process.exit(1)
})
try {
  if (config.migrate) {
    const applied = await migrate(database.sql, { log: (message, fields) => logger.info(fields ?? {}, message) })
    logger.info({ applied }, applied.length > 0 ? 'migrations applied' : 'schema up to date')
  }
} catch (err) {
  logger.fatal({ err }, 'migration failed')
  await database.sql.end({ timeout: 5 })
  await database.stop()
  process.exit(1)
}

const app = await buildServer({ config, sql: database.sql, databaseUrl: database.url, loggerInstance: logger })
// The embedded server stops only once app.close() has ended the pool and the change feed in its onClose hooks. Not in a
// hook of its own: hooks run last-registered-first, so it would stop first and every connection would die under it.
async function close(): Promise<void> {
  await app.close()
  await database.stop()
}

closeWithGrace({ delay: GRACE_MS, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'closing after an unexpected error')
  else logger.info({ signal }, 'shutting down')
  await close()
})

try {
  await app.listen({ host: config.host, port: config.port })
} catch (err) {
  logger.fatal({ err }, 'could not listen')
  await close()
  process.exit(1)
}
