// Session tokens and ids: 256-bit CSPRNG tokens in base64url, stored only as SHA-256 digests; public ids are ULIDs.
import { createHash, randomBytes } from 'node:crypto'
import { monotonicFactory } from 'ulid'

const TOKEN_BYTES = 32
// 32 bytes in unpadded base64url are exactly 43 characters.
const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/
const SESSION_ID_FORMAT = /^s_[0-9A-Z]{26}$/
// ulid's own source draws each of an id's 16 random characters with a crypto.randomBytes(1) call; a pool of CSPRNG bytes
// gives the same uniform draw (256 is a multiple of ulid's 32 symbols) with one call per 4,096 characters.
const RANDOM_POOL_BYTES = 4096
let randomPool = Buffer.alloc(0)
let randomOffset = 0
function pooledRandomFraction(): number {
  if (randomOffset === randomPool.length) {
    randomPool = randomBytes(RANDOM_POOL_BYTES)
    randomOffset = 0
  }
  return randomPool[randomOffset++] / 256
}
const nextUlid = monotonicFactory(pooledRandomFraction)

export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url')
}

export function isWellFormedToken(token: string): boolean {
  return TOKEN_FORMAT.test(token)
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

export function newSessionId(): string {
  return `s_${nextUlid()}`
}

export function isWellFormedSessionId(id: string): boolean {
  return SESSION_ID_FORMAT.test(id)
}
