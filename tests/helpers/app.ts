// The real app on a fresh database, built with buildServer and driven through app.inject.
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import pino from 'pino'
import { loadConfig, type Config } from '../../src/config.js'
import { connect, type Sql } from '../../src/db.js'
import { buildServer } from '../../src/server.js'
import { freshDatabase, TEST_POOL } from './db.js'

type Tap = { teardown(fn: () => unknown): void }

export const APP_KEY = 'app-secret-0123456789abcdef'
export const OTHER_APP_KEY = 'other-secret-0123456789abcdef'
export const ADMIN_KEY = 'ops-secret-0123456789abcdef'

export const BASE_ENV: Record<string, string> = {
  API_KEYS: `app:${APP_KEY},other:${OTHER_APP_KEY}`,
  ADMIN_API_KEYS: `ops:${ADMIN_KEY}`,
  LOG_LEVEL: 'silent',
}

export interface TestApp {
  app: FastifyInstance
  sql: Sql
  config: Config
  url: string
}

export async function setup(t: Tap, env: Record<string, string> = {}): Promise<TestApp> {
  const { url, sql: migrator } = await freshDatabase(t)
  await migrator.end()
  const { app, config } = await buildNode(t, url, env)
  // A second pool for the test's own reads and time travel, so assertions never share the app's pool.
  const sql = connect(url, TEST_POOL)
  t.teardown(() => sql.end({ timeout: 5 }))
  return { app, sql, config, url }
}

// Another service instance (a "node") on an existing database, closed in teardown.
export async function buildNode(t: Tap, url: string, env: Record<string, string> = {}): Promise<{ app: FastifyInstance; config: Config }> {
  const config = loadConfig({ ...BASE_ENV, ...env, DATABASE_URL: url })
  const app = await buildServer({ config, sql: connect(url, config), databaseUrl: url, cron: false, loggerInstance: pino({ level: env.LOG_LEVEL ?? 'silent' }) })
  await app.ready()
  t.teardown(() => app.close())
  return { app, config }
}

export function asKey(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` }
}

export function call(app: FastifyInstance, options: InjectOptions & { key?: string | null }): Promise<LightMyRequestResponse> {
  const { key = APP_KEY, headers = {}, ...rest } = options
  return app.inject({ ...rest, headers: { ...(key === null ? {} : asKey(key)), ...headers } })
}
