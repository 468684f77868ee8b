// Exponential backoff with "equal jitter" (half fixed, half random), so clients that failed together do not retry together.

// A uniform number in [0, 1) from the Web Crypto API (global in Node ≥ 19 and browsers), as the project rule for src/ asks of any randomness.
function uniform(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0]! / 2 ** 32
}

// The delay before retry number `attempt` (1 = after the first failure): about base · 2^(attempt-1), at most maxMs.
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** (attempt - 1))
  return Math.round(exponential / 2 + uniform() * (exponential / 2))
}
