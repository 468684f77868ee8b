// Opaque listing cursors shared by the admin listings, mass revocation and a user's session list.
import { invalidRequest } from './errors.js'

// s: admin sessions, e: admin events, r: a mass revocation's sweep, u: a user's sessions.
export type CursorKind = 's' | 'e' | 'r' | 'u'

// Cursors are opaque to clients: the last row's key, base64url-encoded with a kind prefix.
export function encodeCursor(kind: CursorKind, key: string): string {
  return Buffer.from(`${kind}:${key}`, 'utf8').toString('base64url')
}

export function decodeCursor(kind: CursorKind, cursor: string | undefined, isKey: (key: string) => boolean): string | undefined {
  if (cursor === undefined) return undefined
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8')
  const key = decoded.startsWith(`${kind}:`) ? decoded.slice(2) : ''
  if (!isKey(key)) throw invalidRequest('querystring/cursor is not a cursor from this listing')
  return key
}
