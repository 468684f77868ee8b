// Sessions: the admin listing with its filters, keyset pages, and ending one or the selected sessions with a reason.
import { api } from './api.js'
import { confirmEnd, device, errorBox, h, pageHeading, sessionLink, stateBadge, timeCell, toast, userLink } from './ui.js'

const FILTERS = ['userId', 'policy', 'state', 'idleFor', 'ip']
const PAGE_SIZE = 50

const IDLE_CHOICES = [['', 'any time'], ['300', '5 min'], ['900', '15 min'], ['3600', '1 h'], ['28800', '8 h'], ['86400', '1 day']]
const STATE_CHOICES = [['', 'any state'], ['active', 'Active'], ['idle_timeout', 'Idle timeout'], ['expired', 'Expired'], ['revoked', 'Revoked']]

function field(id, label, control) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control)
}

function select(id, choices, value) {
  return h('select', { id, name: id }, choices.map(([v, text]) => h('option', { value: v, selected: v === (value ?? '') }, text)))
}

function filterForm(query) {
  const form = h('form', { class: 'filters card', id: 'session-filters', role: 'search', 'aria-label': 'Filter sessions' },
    field('userId', 'User', h('input', { id: 'userId', name: 'userId', value: query.get('userId') ?? '', autocomplete: 'off' })),
    field('policy', 'Policy', h('input', { id: 'policy', name: 'policy', value: query.get('policy') ?? '', autocomplete: 'off' })),
    field('state', 'State', select('state', STATE_CHOICES, query.get('state'))),
    field('idleFor', 'Idle for at least', select('idleFor', IDLE_CHOICES, query.get('idleFor'))),
    field('ip', 'IP or CIDR', h('input', { id: 'ip', name: 'ip', value: query.get('ip') ?? '', placeholder: '203.0.113.0/24', autocomplete: 'off', spellcheck: false })),
    h('div', { class: 'field field-actions' },
      h('button', { type: 'submit', class: 'button primary', id: 'apply-filters' }, 'Search'),
      h('a', { href: '#/sessions', class: 'button quiet' }, 'Clear')))
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const next = new URLSearchParams()
    for (const name of FILTERS) {
      const value = form.elements[name].value.trim()
      if (value !== '') next.set(name, value)
    }
    window.location.hash = `#/sessions?${next}`
  })
  return form
}

export async function endSessions(ids, what) {
  const reason = await confirmEnd({
    title: ids.length === 1 ? 'End this session?' : `End ${ids.length} sessions?`,
    text: `${what} The user's app will refuse the session's token at once and tell it why.`,
    action: ids.length === 1 ? 'End session' : `End ${ids.length} sessions`,
  })
  if (reason === null) return false
  let ended = 0
  for (const id of ids) {
    await api('DELETE', `/console/v1/sessions/${encodeURIComponent(id)}`, { query: { reason } })
    ended += 1
  }
  toast(`Ended ${ended} session${ended === 1 ? '' : 's'} (reason: ${reason}).`)
  return true
}

export function sessionRow(item, { selectable, onEnd, columns = 'all' }) {
  const { session, state } = item
  const checkbox = selectable && state === 'active'
    ? h('input', { type: 'checkbox', class: 'select-row', value: session.id, 'aria-label': `Select session ${session.id}` })
    : null
  const endButton = state === 'active'
    ? h('button', { type: 'button', class: 'button small danger-quiet end-one', 'data-session-id': session.id, 'aria-label': `End session ${session.id} of ${session.userId}`, onclick: () => onEnd([session.id]) }, 'End')
    : h('span', { class: 'muted small' }, item.revokeReason ?? '')
  const cells = [
    selectable ? h('td', { class: 'check' }, checkbox) : null,
    h('td', {}, sessionLink(session.id, { short: true })),
    columns === 'all' ? h('td', {}, userLink(session.userId)) : null,
    h('td', {}, session.policy),
    h('td', {}, stateBadge(state)),
    h('td', {}, timeCell(session.createdAt)),
    h('td', {}, timeCell(session.lastSeenAt, 'relative')),
    h('td', {}, timeCell(session.idleExpiresAt, 'relative')),
    h('td', {}, timeCell(session.expiresAt, 'relative')),
    h('td', { class: 'mono' }, session.ip ?? '—'),
    h('td', { title: session.userAgent ?? '' }, device(session.userAgent)),
    h('td', { class: 'actions-cell' }, endButton),
  ]
  return h('tr', { 'data-session-id': session.id, 'data-state': state }, cells)
}

export function sessionTable(items, { selectable = false, onEnd, columns = 'all', caption }) {
  const heads = [selectable ? 'Select' : null, 'Session', columns === 'all' ? 'User' : null, 'Policy', 'State', 'Created', 'Last seen', 'Idle deadline', 'Absolute deadline', 'IP', 'Device', 'Action']
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, heads.filter((x) => x !== null).map((text) => h('th', { scope: 'col', class: text === 'Select' ? 'check' : undefined }, text === 'Select' ? h('span', { class: 'visually-hidden' }, text) : text)))),
      h('tbody', {}, items.map((item) => sessionRow(item, { selectable, onEnd, columns })))))
}

export async function sessionsPage(query) {
  const filter = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) ?? undefined]))
  const cursor = query.get('cursor') ?? undefined
  const node = h('div', {}, pageHeading('Sessions'), filterForm(query))
  let page
  try {
    page = await api('GET', '/console/v1/admin/sessions', { query: { ...filter, cursor, limit: PAGE_SIZE } })
  } catch (err) {
    if (err.status === 401) throw err
    node.append(errorBox(err))
    return { title: 'Sessions', node }
  }
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'))
  const onEnd = async (ids) => { if (await endSessions(ids, ids.length === 1 ? `Session ${ids[0]}.` : 'The selected sessions.')) reload() }
  const endSelected = h('button', { type: 'button', class: 'button danger', id: 'end-selected', disabled: true }, 'End selected')
  const table = sessionTable(page.sessions, { selectable: true, onEnd, caption: 'Sessions matching the filters' })
  const selected = () => [...table.querySelectorAll('input.select-row:checked')].map((box) => box.value)
  table.addEventListener('change', () => {
    const count = selected().length
    endSelected.textContent = count === 0 ? 'End selected' : `End ${count} selected`
    endSelected.disabled = count === 0
  })
  endSelected.addEventListener('click', () => onEnd(selected()))

  const nextQuery = new URLSearchParams(query)
  if (page.nextCursor) nextQuery.set('cursor', page.nextCursor)
  const firstQuery = new URLSearchParams(query)
  firstQuery.delete('cursor')
  node.append(
    h('div', { class: 'toolbar' },
      h('span', { class: 'muted', id: 'result-count' }, `${page.sessions.length} session${page.sessions.length === 1 ? '' : 's'} on this page${cursor ? ' (not the first)' : ''}`),
      endSelected),
    page.sessions.length === 0 ? h('p', { class: 'empty card' }, 'No session matches these filters.') : table,
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? h('a', { class: 'button quiet', href: `#/sessions?${firstQuery}` }, 'First page') : null,
      page.nextCursor ? h('a', { class: 'button quiet', href: `#/sessions?${nextQuery}`, id: 'next-page' }, 'Next page') : null))
  return { title: 'Sessions', node }
}
