// The audit log: filters by type, user, session, actor, IP and time range, newest first, in keyset pages.
import { api } from './api.js'
import { device, errorBox, EVENT_LABELS, h, pageHeading, sessionLink, timeCell, userLink } from './ui.js'

const FILTERS = ['type', 'userId', 'sessionId', 'actor', 'ip', 'since', 'until']
const PAGE_SIZE = 100

function field(id, label, control) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control)
}

// datetime-local speaks local time without a zone; the route wants RFC 3339.
function toIso(local) {
  const ms = Date.parse(local)
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString()
}
function toLocalInput(iso) {
  if (!iso) return ''
  const d = new Date(iso)
  const pad = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

function filterForm(query) {
  const type = h('select', { id: 'type', name: 'type' },
    h('option', { value: '' }, 'any type'),
    Object.entries(EVENT_LABELS).map(([value, text]) => h('option', { value, selected: value === query.get('type') }, text)))
  const form = h('form', { class: 'filters card', id: 'audit-filters', role: 'search', 'aria-label': 'Filter the audit log' },
    field('type', 'Type', type),
    field('userId', 'User', h('input', { id: 'userId', name: 'userId', value: query.get('userId') ?? '', autocomplete: 'off' })),
    field('sessionId', 'Session', h('input', { id: 'sessionId', name: 'sessionId', value: query.get('sessionId') ?? '', autocomplete: 'off', spellcheck: false })),
    field('actor', 'Actor', h('input', { id: 'actor', name: 'actor', value: query.get('actor') ?? '', autocomplete: 'off', placeholder: 'console:ops' })),
    field('ip', 'IP or CIDR', h('input', { id: 'ip', name: 'ip', value: query.get('ip') ?? '', autocomplete: 'off', spellcheck: false })),
    field('since', 'From', h('input', { id: 'since', name: 'since', type: 'datetime-local', value: toLocalInput(query.get('since')) })),
    field('until', 'Until', h('input', { id: 'until', name: 'until', type: 'datetime-local', value: toLocalInput(query.get('until')) })),
    h('div', { class: 'field field-actions' },
      h('button', { type: 'submit', class: 'button primary' }, 'Search'),
      h('a', { href: '#/audit', class: 'button quiet' }, 'Clear')))
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const next = new URLSearchParams()
    for (const name of FILTERS) {
      const raw = form.elements[name].value.trim()
      const value = (name === 'since' || name === 'until') && raw !== '' ? toIso(raw) : raw
      if (value) next.set(name, value)
    }
    window.location.hash = `#/audit?${next}`
  })
  return form
}

export async function auditPage(query) {
  const filter = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) ?? undefined]))
  const cursor = query.get('cursor') ?? undefined
  const node = h('div', {}, pageHeading('Audit log'), filterForm(query))
  let page
  try {
    page = await api('GET', '/console/v1/admin/events', { query: { ...filter, cursor, limit: PAGE_SIZE } })
  } catch (err) {
    if (err.status === 401) throw err
    node.append(errorBox(err))
    return { title: 'Audit log', node }
  }
  const nextQuery = new URLSearchParams(query)
  if (page.nextCursor) nextQuery.set('cursor', page.nextCursor)
  const firstQuery = new URLSearchParams(query)
  firstQuery.delete('cursor')
  node.append(
    page.events.length === 0 ? h('p', { class: 'empty card' }, 'No event matches these filters.') : h('div', { class: 'table-wrap' },
      h('table', { class: 'data', id: 'events' },
        h('caption', { class: 'visually-hidden' }, 'Audit events matching the filters, newest first'),
        h('thead', {}, h('tr', {}, ['When', 'Type', 'User', 'Session', 'Actor', 'Reason', 'IP', 'Device'].map((text) => h('th', { scope: 'col' }, text)))),
        h('tbody', {}, page.events.map((event) => h('tr', { 'data-event-id': event.id },
          h('td', {}, timeCell(event.at)),
          h('td', {}, h('span', { class: `badge event-badge event-${event.type}` }, EVENT_LABELS[event.type] ?? event.type)),
          h('td', {}, userLink(event.userId)),
          h('td', {}, sessionLink(event.sessionId, { short: true })),
          h('td', {}, event.actor),
          h('td', {}, event.reason ?? '—'),
          h('td', { class: 'mono' }, event.ip ?? '—'),
          h('td', {}, device(event.userAgent))))))),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? h('a', { class: 'button quiet', href: `#/audit?${firstQuery}` }, 'First page') : null,
      page.nextCursor ? h('a', { class: 'button quiet', href: `#/audit?${nextQuery}` }, 'Next page') : null))
  return { title: 'Audit log', node }
}
