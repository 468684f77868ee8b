// A user: their active devices, their recently ended sessions (how and by whom), and signing them out everywhere.
import { api } from './api.js'
import { endSessions, sessionTable } from './page-sessions.js'
import { confirmEnd, device, EVENT_LABELS, h, pageHeading, sessionLink, timeCell, toast } from './ui.js'

// A rotation replaces the token but keeps the session: not an ending.
const ENDING = new Set(['revoked', 'expired', 'idle_timeout', 'limit_evicted'])

async function signOutEverywhere(userId, exceptId) {
  const reason = await confirmEnd({
    title: exceptId ? 'Sign out everywhere but one session?' : 'Sign out everywhere?',
    text: exceptId ? `Every active session of ${userId} except ${exceptId} ends now.` : `Every active session of ${userId} ends now.`,
    action: exceptId ? 'Sign out the others' : 'Sign out everywhere',
  })
  if (reason === null) return false
  const { revoked } = await api('DELETE', `/console/v1/users/${encodeURIComponent(userId)}/sessions`, { query: { reason, except: exceptId } })
  toast(`Ended ${revoked} session${revoked === 1 ? '' : 's'} of ${userId} (reason: ${reason}).`)
  return true
}

export async function userPage(userId) {
  const [active, events] = await Promise.all([
    api('GET', '/console/v1/admin/sessions', { query: { userId, state: 'active', limit: 200 } }),
    api('GET', '/console/v1/admin/events', { query: { userId, limit: 200 } }),
  ])
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'))
  const onEnd = async (ids) => { if (await endSessions(ids, `Session ${ids[0]} of ${userId}.`)) reload() }
  const keep = h('select', { id: 'keep-session', name: 'keep' },
    active.sessions.map(({ session }) => h('option', { value: session.id }, `${session.id} · ${device(session.userAgent)} · ${session.ip ?? 'no IP'}`)))
  const everywhere = h('button', { type: 'button', class: 'button danger', id: 'sign-out-everywhere', disabled: active.sessions.length === 0 }, 'Sign out everywhere')
  const allBut = h('button', { type: 'button', class: 'button danger-quiet', id: 'sign-out-others', disabled: active.sessions.length < 2 }, 'Sign out everywhere but this one')
  everywhere.addEventListener('click', async () => { if (await signOutEverywhere(userId)) reload() })
  allBut.addEventListener('click', async () => { if (await signOutEverywhere(userId, keep.value)) reload() })

  const ended = events.events.filter((event) => ENDING.has(event.type)).slice(0, 50)
  const node = h('div', {},
    pageHeading(`User ${userId}`),
    h('section', { class: 'card', 'aria-labelledby': 'devices-title' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'devices-title' }, `Active devices (${active.sessions.length})`),
        h('div', { class: 'head-tools' }, everywhere)),
      active.sessions.length === 0
        ? h('p', { class: 'muted' }, 'No active session.')
        : sessionTable(active.sessions, { onEnd, columns: 'user', caption: `Active sessions of ${userId}` }),
      active.sessions.length < 2 ? null : h('div', { class: 'keep-one' },
        h('label', { for: 'keep-session' }, 'Keep this session'), keep, allBut)),
    h('section', { class: 'card', 'aria-labelledby': 'ended-title' },
      h('h2', { id: 'ended-title' }, 'Recently ended'),
      ended.length === 0 ? h('p', { class: 'muted' }, 'No ended session in the audit log.') : h('div', { class: 'table-wrap' },
        h('table', { class: 'data', id: 'ended-sessions' },
          h('caption', { class: 'visually-hidden' }, `Recently ended sessions of ${userId}`),
          h('thead', {}, h('tr', {}, ['When', 'Session', 'How', 'Reason', 'By', 'IP', 'Device'].map((text) => h('th', { scope: 'col' }, text)))),
          h('tbody', {}, ended.map((event) => h('tr', {},
            h('td', {}, timeCell(event.at)),
            h('td', {}, sessionLink(event.sessionId, { short: true })),
            h('td', {}, EVENT_LABELS[event.type] ?? event.type),
            h('td', {}, event.reason ?? '—'),
            h('td', {}, event.actor),
            h('td', { class: 'mono' }, event.ip ?? '—'),
            h('td', {}, device(event.userAgent)))))))))
  return { title: `User ${userId}`, node }
}
