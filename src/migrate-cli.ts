// `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded database) and exits.
import pino from 'pino'
import { loadConfigOrExit } from './config.js'
import { openDatabase } from './database.js'
import { checkDriverOrExit } from './driver.js'
import { loggerOptions } from './logger.js'
import { migrate } from './migrate.js'

let exitCode = 0
const config = loadConfigOrExit(process.env)
checkDriverOrExit()
const logger = pino(loggerOptions(config) as pino.LoggerOptions)
const database = await openDatabase(config, logger)
try {
  const applied = await migrate(database.sql, { log: (message, fields) => logger.info(fields ?? {}, message) })
  logger.info({ applied }, applied.length > 0 ? 'migrations applied' : 'schema up to date')
} catch (err) {
  logger.fatal({ err }, 'migration failed')
  exitCode = 1
} finally {
  await database.sql.end({ timeout: 5 })
  await database.stop()
}
process.exit(exitCode)
