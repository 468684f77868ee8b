// Overview: the figures of GET /v1/admin/stats, redrawn every 15 seconds without a reload.
import { api } from './api.js'
import { formatDuration, formatTime, h, pageHeading, replace } from './ui.js'

const REFRESH_MS = 15_000

const REASON_LABELS = { logout: 'Logout', admin: 'Operator', session_limit: 'Evicted by the limit', rotated: 'Rotated', password_change: 'Password change' }

function bars(title, entries, { id, label = (key) => key, empty = 'None yet.' } = {}) {
  const max = Math.max(1, ...entries.map(([, count]) => count))
  const list = entries.length === 0
    ? h('p', { class: 'muted' }, empty)
    : h('ul', { class: 'bars' }, entries.map(([key, count]) => {
      const fill = h('span', { class: 'bar-fill' })
      // Width through the CSSOM, which the style-src CSP allows (an inline style attribute would be refused).
      fill.style.width = `${Math.max(count > 0 ? 2 : 0, (count / max) * 100)}%`
      return h('li', {},
        h('span', { class: 'bar-label' }, label(key)),
        h('span', { class: 'bar-track', 'aria-hidden': 'true' }, fill),
        h('span', { class: 'bar-value', 'data-key': key }, count.toLocaleString('en-US')))
    }))
  return h('section', { class: 'card', 'aria-labelledby': id, 'data-block': id }, h('h2', { id }, title), list)
}

function ageBuckets(buckets) {
  let from = 0
  return buckets.map(({ lessThan, count }) => {
    const label = lessThan === null ? `${formatDuration(from)} or more` : `${from === 0 ? 'under' : `${formatDuration(from)} –`} ${formatDuration(lessThan)}`
    from = lessThan ?? from
    return [label, count]
  })
}

function figure(key, label, value, note) {
  return h('div', { class: `figure figure-${key}` },
    h('dt', {}, label),
    h('dd', { 'data-stat': key }, value.toLocaleString('en-US')),
    note ? h('dd', { class: 'figure-note' }, note) : null)
}

function draw(stats) {
  const ended = stats.revoked + stats.expired + stats.idleTimeout
  return [
    h('dl', { class: 'figures' },
      figure('active', 'Active sessions', stats.active),
      figure('activeUsers', 'Active users', stats.activeUsers),
      figure('idleTimeout', 'Ended by idle timeout', stats.idleTimeout, 'not yet pruned'),
      figure('expired', 'Ended at their absolute deadline', stats.expired, 'not yet pruned'),
      figure('revoked', 'Revoked', stats.revoked, `${ended.toLocaleString('en-US')} ended in all`)),
    h('div', { class: 'grid' },
      bars('Revoked, by reason', Object.entries(stats.revokedByReason).sort((a, b) => b[1] - a[1]), { id: 'by-reason', label: (key) => REASON_LABELS[key] ?? key }),
      bars('Active sessions, by policy', Object.entries(stats.byPolicy).sort((a, b) => b[1] - a[1]), { id: 'by-policy' }),
      bars('Active sessions, time since last activity', ageBuckets(stats.idleAge), { id: 'idle-age' }),
      bars('Active sessions, age', ageBuckets(stats.sessionAge), { id: 'session-age' }),
      bars('Sessions created per day (UTC, last 30 days)', stats.createdPerDay.map(({ day, count }) => [day, count]), { id: 'per-day' })),
  ]
}

export async function overviewPage() {
  const body = h('div', { id: 'overview-body' })
  const updated = h('span', { class: 'muted', id: 'updated' })
  const refreshButton = h('button', { type: 'button', class: 'button quiet', id: 'refresh' }, 'Refresh now')
  async function refresh() {
    const stats = await api('GET', '/console/v1/admin/stats')
    replace(body, draw(stats))
    updated.textContent = `Updated ${formatTime(new Date().toISOString())}, every ${REFRESH_MS / 1000} s`
  }
  refreshButton.addEventListener('click', () => { refresh().catch(() => {}) })
  await refresh()
  const timer = setInterval(() => { refresh().catch(() => {}) }, REFRESH_MS)
  return {
    title: 'Overview',
    node: h('div', {}, pageHeading('Overview', h('div', { class: 'head-tools' }, updated, refreshButton)), body),
    leave: () => clearInterval(timer),
  }
}
