// The opt-in per-node cache of validated sessions: bounded, never past a session's own deadlines, dropped on any change.
import type { SessionRow } from './types.js'

interface Entry {
  row: SessionRow
  // Local monotonic deadlines (performance.now() ms), derived from database-clock durations.
  freshUntil: number
  touchDueAt: number
}

export interface CachedLookup {
  row: SessionRow
  touchDue: boolean
}

// The database's view at read time, turned into durations so the node's wall clock never decides anything.
export interface DbTimes {
  msUntilEnd: number
  msUntilTouchDue: number
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>()
  private readonly keysBySession = new Map<string, Set<string>>()
  // Bumped by every eviction: a read that started before an eviction must not repopulate the cache.
  private epoch = 0
  private trusted = false

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.entries.size
  }

  // Only while the change feed is connected does an entry stay trustworthy.
  isTrusted(): boolean {
    return this.trusted
  }

  trust(): void {
    this.flush()
    this.trusted = true
  }

  distrust(): void {
    this.trusted = false
    this.flush()
  }

  readEpoch(): number {
    return this.epoch
  }

  get(key: string): CachedLookup | undefined {
    if (!this.trusted) return undefined
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    const now = this.now()
    if (now >= entry.freshUntil) {
      this.remove(key, entry.row.id)
      return undefined
    }
    // Map order is insertion order: re-inserting marks the entry most recently used.
    this.entries.delete(key)
    this.entries.set(key, entry)
    return { row: entry.row, touchDue: now >= entry.touchDueAt }
  }

  set(key: string, row: SessionRow, times: DbTimes, readEpoch: number): void {
    if (!this.trusted || readEpoch !== this.epoch || times.msUntilEnd <= 0) return
    const now = this.now()
    this.entries.delete(key)
    this.entries.set(key, { row, freshUntil: now + Math.min(this.ttlMs, times.msUntilEnd), touchDueAt: now + times.msUntilTouchDue })
    let keys = this.keysBySession.get(row.id)
    if (keys === undefined) this.keysBySession.set(row.id, (keys = new Set()))
    keys.add(key)
    while (this.entries.size > this.maxEntries) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, Entry]
      this.remove(oldestKey, oldest.row.id)
    }
  }

  evictSession(sessionId: string): void {
    this.epoch++
    for (const key of this.keysBySession.get(sessionId) ?? []) this.entries.delete(key)
    this.keysBySession.delete(sessionId)
  }

  flush(): void {
    this.epoch++
    this.entries.clear()
    this.keysBySession.clear()
  }

  private remove(key: string, sessionId: string): void {
    this.entries.delete(key)
    const keys = this.keysBySession.get(sessionId)
    keys?.delete(key)
    if (keys?.size === 0) this.keysBySession.delete(sessionId)
  }
}
