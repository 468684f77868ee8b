#!/usr/bin/env node
// Ops command line (`npm run sessions -- <command>`): stats, prune, list and revoke against DATABASE_URL or the embedded database.
import { parseArgs } from 'node:util'
import pino from 'pino'
import { createAdminService } from './admin/service.js'
import { loadConfig } from './config.js'
import { openDatabase } from './database.js'
import { checkDriverOrExit } from './driver.js'
import { prune } from './jobs/prune.js'
import { createMetrics } from './metrics.js'
import { createSessionService } from './sessions/service.js'
import { toSession } from './sessions/types.js'

const USAGE = `usage: sessions <command> [options] [--json]

commands:
  stats                                        counts by state and policy
  prune                                        record time-ended sessions, delete what is past retention
  list --user <userId>                         the user's active sessions
  revoke --user <userId> [--except <id>] [--reason <reason>]
                                               end all of a user's sessions (but one)
  revoke --session <id> [--reason <reason>]    end one session

Uses DATABASE_URL, or the embedded database under DATA_DIR when it is unset.`

const CLI_ACTOR = { name: 'cli' }

export function formatTable(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '(none)'
  const columns = Object.keys(rows[0])
  const cells = rows.map((row) => columns.map((column) => String(row[column] ?? '')))
  const widths = columns.map((column, i) => Math.max(column.length, ...cells.map((line) => line[i].length)))
  const render = (line: string[]) => line.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()
  return [render(columns), render(widths.map((width) => '-'.repeat(width))), ...cells.map(render)].join('\n')
}

class UsageError extends Error {}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`)
  return value
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      user: { type: 'string' },
      session: { type: 'string' },
      except: { type: 'string' },
      reason: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  const [command] = positionals
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`)
    return command === undefined && !values.help ? 2 : 0
  }
  if (!['stats', 'prune', 'list', 'revoke'].includes(command)) throw new UsageError(`unknown command "${command}"`)

  const config = loadConfig({ ...process.env, MIGRATE: 'false' })
  checkDriverOrExit()
  const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2))
  // With the embedded database, a running service's server is used as it is.
  const database = await openDatabase(config, log, { reuseRunningEmbedded: true })
  const metrics = createMetrics(config.databasePoolMax)
  const sessions = createSessionService({ sql: database.sql, config, metrics })
  const admin = createAdminService({ sql: database.sql, metrics, forgetLocally: sessions.forgetLocally })
  const print = (json: unknown, human: string) => process.stdout.write(`${values.json ? JSON.stringify(json, null, 2) : human}\n`)
  try {
    switch (command) {
      case 'stats': {
        const stats = await admin.stats()
        const summary = { active: stats.active, activeUsers: stats.activeUsers, revoked: stats.revoked, expired: stats.expired, idleTimeout: stats.idleTimeout }
        print(stats, [
          formatTable([summary]),
          '',
          formatTable(Object.entries(stats.byPolicy).map(([policy, active]) => ({ policy, active }))),
          '',
          formatTable(Object.entries(stats.revokedByReason).map(([reason, revoked]) => ({ reason, revoked }))),
        ].join('\n'))
        break
      }
      case 'prune': {
        const result = await prune(database.sql, config, metrics)
        print(result, result.ran
          ? `recorded ${result.endedRecorded} time-ended sessions; deleted ${result.sessions} sessions and ${result.events} events`
          : 'skipped: another node is pruning')
        break
      }
      case 'list': {
        const userId = required(values.user, '--user')
        const list = []
        let cursor: string | undefined
        do {
          const page = await sessions.listForUser(userId, { limit: 1000, cursor })
          list.push(...page.items.map(toSession))
          cursor = page.nextCursor ?? undefined
        } while (cursor !== undefined)
        print({ sessions: list }, formatTable(list.map((s) => ({
          id: s.id, policy: s.policy, createdAt: s.createdAt, lastSeenAt: s.lastSeenAt, idleExpiresAt: s.idleExpiresAt, ip: s.ip, userAgent: s.userAgent,
        }))))
        break
      }
      case 'revoke': {
        if (values.session !== undefined) {
          await sessions.revokeById(values.session, values.reason, CLI_ACTOR)
          print({ revoked: values.session }, `revoked ${values.session}`)
        } else {
          const revoked = await sessions.revokeAllForUser(required(values.user, '--user or --session'), values.except, values.reason, CLI_ACTOR)
          print({ revoked }, `revoked ${revoked} sessions`)
        }
        break
      }
    }
    return 0
  } finally {
    await database.sql.end({ timeout: 5 })
    await database.stop()
  }
}

try {
  process.exitCode = await main(process.argv.slice(2))
} catch (err) {
  const message = err instanceof UsageError ? `${err.message}\n\n${USAGE}` : (err as Error).message
  process.stderr.write(`sessions: ${message}\n`)
  process.exitCode = err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1
}
