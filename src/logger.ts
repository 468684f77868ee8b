// pino options: JSON logs, level from config, secrets redacted, request URLs logged without their query string.
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

export function loggerOptions(config: Pick<Config, 'logLevel'>): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      req: (req: FastifyRequest) => ({
        method: req.method,
        url: pathOnly(req.url),
        remoteAddress: req.ip,
      }),
    },
  }
}
