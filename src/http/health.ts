// Unauthenticated operational routes: liveness, readiness, Prometheus metrics and the OpenAPI document.
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Sql } from '../db.js'
import { RETRY_AFTER_SECONDS } from '../errors.js'
import type { Metrics } from '../metrics.js'
import { listMigrations, pendingMigrations } from '../migrate.js'

export const OPENAPI_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'openapi.yaml')

const Status = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: { status: { type: 'string' } },
} as const

export interface HealthRoutesOptions {
  sql: Sql
  metrics: Metrics
  isShuttingDown: () => boolean
}

export async function healthRoutes(app: FastifyInstance, { sql, metrics, isShuttingDown }: HealthRoutesOptions): Promise<void> {
  const openapi = await readFile(OPENAPI_PATH, 'utf8')
  const migrations = await listMigrations()
  // Once every migration this build knows is applied, it stays so: later checks need only reach the database.
  let schemaReady = false

  const unready = (reply: FastifyReply, status: string) =>
    reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS)).send({ status })

  app.get('/healthz', { config: { logSuccessAtDebug: true }, schema: { response: { 200: Status } } }, async () => ({ status: 'ok' }))

  app.get('/readyz', { config: { logSuccessAtDebug: true }, schema: { response: { 200: Status, 503: Status } } }, async (req, reply) => {
    if (isShuttingDown()) return unready(reply, 'shutting_down')
    try {
      if (!schemaReady) {
        const pending = await pendingMigrations(sql, migrations)
        if (pending.length > 0) return unready(reply, 'migrations_pending')
        schemaReady = true
      } else {
        await sql`select 1`
      }
      return { status: 'ready' }
    } catch (err) {
      req.log.warn({ code: (err as { code?: string }).code }, 'readiness check failed')
      return unready(reply, 'database_unavailable')
    }
  })

  app.get('/metrics', { config: { logSuccessAtDebug: true } }, async (_req, reply) => {
    const body = await metrics.registry.metrics()
    return reply.type(metrics.registry.contentType).send(body)
  })

  app.get('/openapi.yaml', async (_req, reply) => reply.type('application/yaml; charset=utf-8').send(openapi))
}
