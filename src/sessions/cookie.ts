// The one Set-Cookie value every backend should send: built from the cookie settings and the database's deadlines.
import { fastifyCookie } from '@fastify/cookie'
import type { CookieConfig } from '../config.js'
import type { SessionRow } from './types.js'

function baseOptions(cookie: CookieConfig) {
  return {
    httpOnly: true,
    secure: cookie.secure,
    sameSite: cookie.sameSite,
    path: cookie.path,
    ...(cookie.domain === undefined ? {} : { domain: cookie.domain }),
  }
}

// Max-Age is the remaining absolute lifetime as the database measured it (expires_at - last_seen_at, both database times).
export function sessionCookie(cookie: CookieConfig, token: string, row: SessionRow): string {
  const maxAge = Math.max(0, Math.floor((row.expires_at.getTime() - row.last_seen_at.getTime()) / 1000))
  return fastifyCookie.serialize(cookie.name, token, { ...baseOptions(cookie), maxAge, expires: row.expires_at })
}

export function clearingCookie(cookie: CookieConfig): string {
  return fastifyCookie.serialize(cookie.name, '', { ...baseOptions(cookie), maxAge: 0, expires: new Date(0) })
}
