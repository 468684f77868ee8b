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

// Cookie tossing: a sibling subdomain (or an insecure page on the same host) can plant a second cookie of the same name
// with Domain=parent or another Path, and browsers send both in an order the service cannot trust. So a name that appears
// more than once is refused rather than guessed, except with the __Host- prefix, which only this host can set at Path=/.
export function isAmbiguousCookie(header: string | string[] | undefined, name: string): boolean {
  if (name.startsWith('__Host-')) return false
  const text = Array.isArray(header) ? header.join('; ') : header
  if (text === undefined || text === '') return false
  let seen = 0
  for (const part of text.split(';')) {
    const eq = part.indexOf('=')
    if (eq >= 0 && part.slice(0, eq).trim() === name) seen += 1
  }
  return seen > 1
}
