// pino options: JSON logs, level from config, secrets redacted, request URLs logged without their query string or token-shaped segments.
import type { FastifyServerOptions, FastifyRequest } from 'fastify'
import type { Config } from './config.js'

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-session-token"]',
  'res.headers["set-cookie"]',
  'token',
  '*.token',
  'tokenHash',
  '*.tokenHash',
  'setCookie',
  '*.setCookie',
]

// A token must never reach a log line, even one sent by mistake in a query string (?sid=, ?token=).
export function pathOnly(url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

// Nor one sent where an id belongs (GET /v1/sessions/<token>, a user id that is a token) or in a path no route matches: a
// path segment or id holding a run of 32 or more base64, base64url or hex characters (a token has 43), percent-encoded or
// not, is logged as [redacted]. Session ids (s_ and 26 characters) and UUIDs keep their value.
const TOKEN_RUN = /[A-Za-z0-9+/=_-]{32,}/
const NOT_TOKENS = [/^s_[0-9A-Z]{26}$/, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i]
export const REDACTED = '[redacted]'

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

export function isTokenShaped(value: string): boolean {
  const decoded = decodeSegment(value)
  return TOKEN_RUN.test(decoded) && !NOT_TOKENS.some((shape) => shape.test(decoded))
}

export function loggablePath(url: string): string {
  return pathOnly(url).split('/').map((segment) => (isTokenShaped(segment) ? REDACTED : segment)).join('/')
}

// For ids a caller chose (in a path, a query or a body) logged as fields of their own.
const loggableId = (value: unknown) => (typeof value === 'string' && isTokenShaped(value) ? REDACTED : value)

export function loggerOptions(config: Pick<Config, 'logLevel'>): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      userId: loggableId,
      sessionId: loggableId,
      except: loggableId,
      req: (req: FastifyRequest) => ({
        method: req.method,
        url: loggablePath(req.url),
        remoteAddress: req.ip,
      }),
    },
  }
}
