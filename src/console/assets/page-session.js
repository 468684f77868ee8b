// One session: what the store holds (read-only), and the timeline of its audit events.
import { api } from './api.js'
import { endSessions } from './page-sessions.js'
import { device, EVENT_LABELS, h, pageHeading, stateBadge, timeCell, userLink } from './ui.js'

function row(label, value) {
  return [h('dt', {}, label), h('dd', {}, value)]
}

export async function sessionPage(id) {
  const [status, events] = await Promise.all([
    api('GET', `/console/v1/sessions/${encodeURIComponent(id)}`),
    api('GET', '/console/v1/admin/events', { query: { sessionId: id, limit: 500 } }),
  ])
  const { session, state } = status
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'))
  const end = state === 'active'
    ? h('button', { type: 'button', class: 'button danger', id: 'end-session', onclick: async () => { if (await endSessions([id], `Session ${id} of ${session.userId}.`)) reload() } }, 'End this session')
    : null
  const timeline = [...events.events].reverse()
  const node = h('div', {},
    pageHeading(`Session ${id}`, h('div', { class: 'head-tools' }, stateBadge(state), end)),
    h('div', { class: 'grid two' },
      h('section', { class: 'card', 'aria-labelledby': 'summary-title' },
        h('h2', { id: 'summary-title' }, 'Summary'),
        h('dl', { class: 'pairs' },
          row('User', userLink(session.userId)),
          row('Policy', session.policy),
          row('State', stateBadge(state)),
          status.revokedAt ? row('Revoked', [timeCell(status.revokedAt), ` (${status.revokeReason})`]) : null,
          row('Created', timeCell(session.createdAt)),
          row('Last seen', [timeCell(session.lastSeenAt), ' · ', timeCell(session.lastSeenAt, 'relative')]),
          row('Idle deadline', [timeCell(session.idleExpiresAt), ' · ', timeCell(session.idleExpiresAt, 'relative')]),
          row('Absolute deadline', [timeCell(session.expiresAt), ' · ', timeCell(session.expiresAt, 'relative')]),
          row('IP', h('span', { class: 'mono' }, session.ip ?? '—')),
          row('Device', device(session.userAgent)),
          row('User agent', h('span', { class: 'small' }, session.userAgent ?? '—')),
          row('Data version', String(session.version)))),
      h('section', { class: 'card', 'aria-labelledby': 'data-title' },
        h('h2', { id: 'data-title' }, 'Data (read-only)'),
        h('pre', { class: 'json', id: 'session-data', tabindex: '0', 'aria-labelledby': 'data-title' }, JSON.stringify(session.data, null, 2)))),
    h('section', { class: 'card', 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title' }, 'Timeline'),
      timeline.length === 0 ? h('p', { class: 'muted' }, 'No audit event is left for this session.') : h('ol', { class: 'timeline', id: 'timeline' },
        timeline.map((event) => h('li', { class: `event event-${event.type}` },
          h('span', { class: 'event-dot', 'aria-hidden': 'true' }),
          h('div', {},
            h('strong', {}, EVENT_LABELS[event.type] ?? event.type),
            event.reason ? ` · ${event.reason}` : '',
            h('div', { class: 'muted small' }, timeCell(event.at), ` · by ${event.actor}`, event.ip ? ` · from ${event.ip}` : '')))))))
  return { title: `Session ${id}`, node }
}
