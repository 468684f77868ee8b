// A service whose log lines are captured in memory, with the service's own pino options at a chosen level.
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import pino from 'pino'
import type { Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { connect } from '../../src/db.js'
import { loggerOptions } from '../../src/logger.js'
import { buildServer } from '../../src/server.js'
import { BASE_ENV } from './app.js'
import { freshDatabase, POOL } from './db.js'

export interface LoggedApp {
  app: FastifyInstance
  logger: pino.Logger
  // Everything written so far, and the same parsed line by line.
  text(): string
  lines(): Record<string, unknown>[]
}

export async function appWithCapturedLog(t: Test, level: string): Promise<LoggedApp> {
  const { url, sql: migrator } = await freshDatabase(t)
  await migrator.end()
  const config = loadConfig({ ...BASE_ENV, LOG_LEVEL: level, DATABASE_URL: url })
  let captured = ''
  const stream = new Writable({
    write(chunk, _encoding, done) {
      captured += chunk.toString()
      done()
    },
  })
  const logger = pino(loggerOptions(config) as pino.LoggerOptions, stream)
  const app = await buildServer({ config, sql: connect(url, POOL), cron: false, loggerInstance: logger })
  t.teardown(() => app.close())
  await app.ready()
  return {
    app,
    logger,
    text: () => captured,
    lines: () => captured.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>),
  }
}
