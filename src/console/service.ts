// Console sessions: an operator's admin key, checked once, opens a session of the built-in `console` policy in the
// service's own store; the cookie's token then stands for that key until sign-out, the idle or the absolute deadline.
import { createHash } from 'node:crypto'
import type { ApiKey, KeyRing } from '../auth/api-keys.js'
import type { Config } from '../config.js'
import type { Sql } from '../db.js'
import type { SessionService } from '../sessions/service.js'
import * as store from '../sessions/store.js'
import { hashToken, isWellFormedToken, newSessionId, newToken } from '../sessions/tokens.js'
import type { SessionRow } from '../sessions/types.js'

export const CONSOLE_POLICY = 'console'
export const CONSOLE_COOKIE = 'console_sid'
// Audit actor and user id of a console session: the key's name behind a prefix no key name can contain.
export const CONSOLE_PREFIX = 'console:'

export interface ConsoleSignIn {
  token: string
  row: SessionRow
  actor: string
}

export interface ConsoleIdentity {
  key: ApiKey
  row: SessionRow
}

// The per-session CSRF token: derived from the cookie's token, so it needs no storage and dies with the session.
export function csrfTokenFor(token: string): string {
  return createHash('sha256').update(`console-csrf\0${token}`, 'utf8').digest('base64url')
}

export type ConsoleService = ReturnType<typeof createConsoleService>

export function createConsoleService({ sql, config, ring, sessions }: { sql: Sql; config: Config; ring: KeyRing; sessions: SessionService }) {
  const adminNames = new Set(config.apiKeys.filter((key) => key.scope === 'admin').map((key) => key.name))

  // undefined: not an admin key (unknown, or scope sessions); the caller counts it as a wrong key.
  async function signIn(secret: string, client: { ip: string; userAgent: string | undefined }): Promise<ConsoleSignIn | undefined> {
    const key = ring.find(secret)
    if (key === undefined || key.scope !== 'admin') return undefined
    const token = newToken()
    const actor = `${CONSOLE_PREFIX}${key.name}`
    // One statement, the session with its "created" event: the audit trail shows who opened the console and from where.
    const row = await store.insertSessionWithEvent(sql, {
      id: newSessionId(),
      tokenHash: hashToken(token),
      userId: actor,
      policy: CONSOLE_POLICY,
      data: {},
      idleTimeout: config.console.idleTimeout,
      absoluteTimeout: config.console.absoluteTimeout,
      ip: client.ip,
      userAgent: client.userAgent === undefined ? null : client.userAgent.slice(0, 512),
    }, actor)
    return { token, row, actor }
  }

  // The key a console cookie stands for, sliding its idle deadline at most once per SESSION_TOUCH_INTERVAL; undefined when
  // the session ended, is not a console session, or its key is no longer configured.
  async function identify(token: string): Promise<ConsoleIdentity | undefined> {
    if (!isWellFormedToken(token)) return undefined
    const row = await store.findByTokenHash(sql, hashToken(token), config.touchInterval)
    if (row === undefined || row.rotated || row.state !== 'active' || row.policy !== CONSOLE_POLICY) return undefined
    const name = row.user_id.startsWith(CONSOLE_PREFIX) ? row.user_id.slice(CONSOLE_PREFIX.length) : ''
    if (!adminNames.has(name)) return undefined
    const current = row.touch_due ? await store.touch(sql, row.id) : row
    if (current === undefined) return undefined
    return { key: { name: `${CONSOLE_PREFIX}${name}`, scope: 'admin' }, row: current }
  }

  // Sign-out ends the session in the store (audited, and announced to every node's cache like any logout).
  async function signOut(token: string, actor: string): Promise<void> {
    await sessions.revokeByToken(token, 'logout', { name: actor })
  }

  return { signIn, identify, signOut }
}
