// Rules for session data: a JSON object of at most 16 KiB (UTF-8 of its JSON), without NUL or lone surrogates, nested at most 32 deep.
import { invalidRequest, payloadTooLarge } from '../errors.js'
import type { Json } from './merge-patch.js'

export const MAX_DATA_BYTES = 16 * 1024
export const MAX_DATA_DEPTH = 32

function isCleanString(value: string): boolean {
  return !value.includes('\u0000') && value.isWellFormed()
}

// Iterative, so a hostile document cannot overflow the stack before it is rejected.
export function checkDataShape(value: unknown, field = 'data'): void {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }]
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!
    if (typeof current === 'string') {
      if (!isCleanString(current)) throw invalidRequest(`body/${field} must not contain NUL characters or lone surrogates`)
      continue
    }
    if (typeof current !== 'object' || current === null) continue
    if (depth > MAX_DATA_DEPTH) throw invalidRequest(`body/${field} must not be nested more than ${MAX_DATA_DEPTH} levels deep`)
    if (Array.isArray(current)) {
      for (const item of current) stack.push({ value: item, depth: depth + 1 })
      continue
    }
    for (const [key, item] of Object.entries(current)) {
      if (!isCleanString(key)) throw invalidRequest(`body/${field} must not contain NUL characters or lone surrogates`)
      stack.push({ value: item, depth: depth + 1 })
    }
  }
}

export function checkDataSize(data: Json): void {
  if (Buffer.byteLength(JSON.stringify(data), 'utf8') > MAX_DATA_BYTES) {
    throw payloadTooLarge(`session data must be at most ${MAX_DATA_BYTES} bytes of JSON`)
  }
}
