// The app node's session cache: validated sessions by token digest, for a short TTL and never past the session's own deadlines.
import type { Session } from './types.js'

interface Entry {
  session: Session
  // Local clock (ms) after which the entry is not used: the earliest of TTL, idleExpiresAt and expiresAt.
  until: number
}

export class SessionCache {
  // Insertion order is recency order: a hit re-inserts, and the first key is the least recently used.
  private readonly entries = new Map<string, Entry>()
  private readonly keysBySession = new Map<string, Set<string>>()

  constructor(readonly ttlMs: number, readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size
  }

  get(key: string, now: number): Session | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    if (now >= entry.until) {
      this.delete(key)
      return undefined
    }
    this.entries.delete(key)
    this.entries.set(key, entry)
    return entry.session
  }

  // The deadlines are the service's (database clock) read on this node's clock: skew between the two can stretch an
  // entry past a deadline by at most the skew, and never past the TTL.
  set(key: string, session: Session, now: number): void {
    if (this.ttlMs <= 0 || this.maxEntries <= 0) return
    const until = Math.min(now + this.ttlMs, Date.parse(session.idleExpiresAt), Date.parse(session.expiresAt))
    if (!(until > now)) {
      this.delete(key)
      return
    }
    this.delete(key)
    this.entries.set(key, { session, until })
    let keys = this.keysBySession.get(session.id)
    if (keys === undefined) this.keysBySession.set(session.id, (keys = new Set()))
    keys.add(key)
    while (this.entries.size > this.maxEntries) this.delete(this.entries.keys().next().value as string)
  }

  // The entry's session without counting as a use (or undefined).
  peek(key: string): Session | undefined {
    return this.entries.get(key)?.session
  }

  // The ids of the user's cached sessions.
  sessionIdsOf(userId: string): string[] {
    const ids: string[] = []
    for (const [sessionId, keys] of this.keysBySession) {
      const first = keys.values().next().value
      if (first !== undefined && this.entries.get(first)?.session.userId === userId) ids.push(sessionId)
    }
    return ids
  }

  delete(key: string): void {
    const entry = this.entries.get(key)
    if (entry === undefined) return
    this.entries.delete(key)
    const keys = this.keysBySession.get(entry.session.id)
    keys?.delete(key)
    if (keys?.size === 0) this.keysBySession.delete(entry.session.id)
  }

  // Every token of the session (a rotation leaves two for a moment); returns how many entries went.
  evictSession(sessionId: string): number {
    const keys = this.keysBySession.get(sessionId)
    if (keys === undefined) return 0
    const count = keys.size
    for (const key of [...keys]) this.delete(key)
    return count
  }

  flush(): void {
    this.entries.clear()
    this.keysBySession.clear()
  }
}
