// Prometheus metrics, one registry per server so that several servers in one process (tests) never collide.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

// Label values come from bounded sets only: every distinct value is a time series kept for the life of the process, so a
// caller's free text (a revoke reason) would grow /metrics without limit. Other label values here come from the code
// (routes are templates, codes and outcomes are ours) or from the configuration (policy names).
export const REVOKE_REASON_LABELS = ['logout', 'admin', 'password_change', 'session_limit', 'rotated', 'security', 'user_deleted'] as const
export const OTHER_LABEL = 'other'

export function revokeReasonLabel(reason: string): string {
  return (REVOKE_REASON_LABELS as readonly string[]).includes(reason) ? reason : OTHER_LABEL
}

// sessions_revoked_total: counts only sessions actually revoked (a call that revoked none adds no series), by a bounded reason.
export interface RevokedCounter {
  inc(labels: { reason: string }, revoked?: number): void
}

export interface Metrics {
  registry: Registry
  httpRequests: Counter<'method' | 'route' | 'status'>
  httpDuration: Histogram<'method' | 'route' | 'status'>
  validations: Counter<'outcome' | 'reason'>
  sessionInvalid: Counter<'reason'>
  sessionsCreated: Counter<'policy'>
  sessionsRevoked: RevokedCounter
  sessionsEvicted: Counter<'policy'>
  pruneRuns: Counter<'result'>
  pruneRows: Counter<'kind'>
  pruneDuration: Histogram
  errors: Counter<'code'>
  poolMax: Gauge
}

export function createMetrics(poolMax: number): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const registers = [registry]
  return {
    registry,
    httpRequests: new Counter({ name: 'http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    validations: new Counter({ name: 'session_validations_total', help: 'Session validations by outcome', labelNames: ['outcome', 'reason'], registers }),
    sessionInvalid: new Counter({ name: 'session_invalid_total', help: 'Rejected session tokens by reason', labelNames: ['reason'], registers }),
    sessionsCreated: new Counter({ name: 'sessions_created_total', help: 'Sessions created', labelNames: ['policy'], registers }),
    sessionsRevoked: (() => {
      const counter = new Counter({ name: 'sessions_revoked_total', help: 'Sessions revoked by reason (known reasons; any other is "other")', labelNames: ['reason'], registers })
      return {
        inc({ reason }: { reason: string }, revoked = 1) {
          if (revoked > 0) counter.inc({ reason: revokeReasonLabel(reason) }, revoked)
        },
      }
    })(),
    sessionsEvicted: new Counter({ name: 'sessions_evicted_total', help: 'Sessions revoked by the per-user limit', labelNames: ['policy'], registers }),
    pruneRuns: new Counter({ name: 'prune_runs_total', help: 'Prune runs by result (ran or skipped because another node held the lock)', labelNames: ['result'], registers }),
    pruneRows: new Counter({ name: 'prune_rows_total', help: 'Rows handled by pruning: sessions and events deleted, time-ended sessions recorded', labelNames: ['kind'], registers }),
    pruneDuration: new Histogram({ name: 'prune_duration_seconds', help: 'Duration of prune runs that held the lock', buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300], registers }),
    // code "unavailable" counts requests that found the database unreachable (or the pool exhausted).
    errors: new Counter({ name: 'http_errors_total', help: 'Error responses by contract error code', labelNames: ['code'], registers }),
    poolMax: (() => {
      const gauge = new Gauge({ name: 'db_pool_max_connections', help: 'Configured size of the database pool (DATABASE_POOL_MAX)', registers })
      gauge.set(poolMax)
      return gauge
    })(),
  }
}

export function observeCache(metrics: Metrics, cache: { size: number; isTrusted(): boolean }): void {
  const registers = [metrics.registry]
  new Gauge({ name: 'session_cache_entries', help: 'Sessions in this node\'s cache', registers, collect() { this.set(cache.size) } })
  new Gauge({
    name: 'session_cache_trusted',
    help: '1 while the change feed listens and the cache is used; 0 while it is bypassed',
    registers,
    collect() { this.set(cache.isTrusted() ? 1 : 0) },
  })
}
