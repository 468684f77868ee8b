// API keys: constant-time lookup of the presented bearer secret, and the per-plugin scope check.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { ApiKeyConfig } from '../config.js'
import { forbidden, invalidApiKey } from '../errors.js'

export type Scope = 'sessions' | 'admin'

export interface ApiKey {
  readonly name: string
  readonly scope: Scope
}

interface StoredKey extends ApiKey {
  readonly digest: Buffer
}

declare module 'fastify' {
  interface FastifyRequest {
    apiKey: ApiKey | null
  }
}

// With no keys configured (allowed on loopback only) every caller acts as this admin key.
export const OPEN_ACCESS_KEY: ApiKey = Object.freeze({ name: 'anonymous', scope: 'admin' })

const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest()
}

export interface KeyRing {
  readonly open: boolean
  find(secret: string): ApiKey | undefined
}

export function createKeyRing(keys: readonly ApiKeyConfig[]): KeyRing {
  const stored: StoredKey[] = keys.map((key) => Object.freeze({ name: key.name, scope: key.scope, digest: digest(key.secret) }))
  return {
    open: stored.length === 0,
    // Equal-length digests through timingSafeEqual, over every key with no early exit.
    find(secret: string): ApiKey | undefined {
      const presented = digest(secret)
      let match: StoredKey | undefined
      for (const key of stored) {
        if (timingSafeEqual(presented, key.digest) && match === undefined) match = key
      }
      return match === undefined ? undefined : { name: match.name, scope: match.scope }
    },
  }
}

export function authenticate(ring: KeyRing, authorization: string | undefined): ApiKey {
  if (ring.open) return OPEN_ACCESS_KEY
  const bearer = authorization === undefined ? null : BEARER.exec(authorization)
  if (bearer === null) throw invalidApiKey()
  const key = ring.find(bearer[1])
  if (key === undefined) throw invalidApiKey()
  return key
}

export function hasScope(key: ApiKey, scope: Scope): boolean {
  return key.scope === 'admin' || key.scope === scope
}

// Another way in for a request without an Authorization header (the operator console's session cookie): the key it stands
// for, or undefined when the request offers none, so the usual 401 follows.
export type AlternativeAuth = (req: FastifyRequest) => Promise<ApiKey | undefined>

export function requireScope(ring: KeyRing, scope: Scope, alternative?: AlternativeAuth): onRequestHookHandler {
  return async function checkScope(req: FastifyRequest, _reply: FastifyReply) {
    const viaAlternative = !ring.open && req.headers.authorization === undefined && alternative !== undefined ? await alternative(req) : undefined
    const key = viaAlternative ?? authenticate(ring, req.headers.authorization)
    if (!hasScope(key, scope)) throw forbidden(scope)
    req.apiKey = key
  }
}
