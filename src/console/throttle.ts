// Wrong console keys, counted per client address on this node: a few are free, then each waits twice as long as the last.
// In memory and per node (a node restart forgets; three nodes allow three times as many guesses), which is enough against
// guessing a 16+ character secret while keeping a typo cheap.

export const FREE_FAILURES = 3
export const MAX_DELAY_SECONDS = 300
// An address that stops failing is forgotten after this long.
const FORGET_AFTER_MS = 15 * 60_000
// Bound on the addresses remembered; the least recently failing go first.
const MAX_ADDRESSES = 10_000

interface Failures {
  count: number
  lastAt: number
  blockedUntil: number
}

export class SignInThrottle {
  private readonly byAddress = new Map<string, Failures>()

  constructor(private readonly now: () => number = Date.now) {}

  // Whole seconds the address must still wait before its next attempt; 0 when it may try now.
  retryAfter(address: string): number {
    const entry = this.current(address)
    if (entry === undefined) return 0
    return Math.max(0, Math.ceil((entry.blockedUntil - this.now()) / 1000))
  }

  failed(address: string): void {
    const at = this.now()
    const entry = this.current(address) ?? { count: 0, lastAt: at, blockedUntil: 0 }
    entry.count += 1
    entry.lastAt = at
    const over = entry.count - FREE_FAILURES
    entry.blockedUntil = over > 0 ? at + Math.min(2 ** (over - 1), MAX_DELAY_SECONDS) * 1000 : 0
    this.byAddress.delete(address)
    this.byAddress.set(address, entry)
    if (this.byAddress.size > MAX_ADDRESSES) this.byAddress.delete(this.byAddress.keys().next().value as string)
  }

  succeeded(address: string): void {
    this.byAddress.delete(address)
  }

  private current(address: string): Failures | undefined {
    const entry = this.byAddress.get(address)
    if (entry !== undefined && this.now() - entry.lastAt > FORGET_AFTER_MS && this.now() >= entry.blockedUntil) {
      this.byAddress.delete(address)
      return undefined
    }
    return entry
  }
}
