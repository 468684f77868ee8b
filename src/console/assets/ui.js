// DOM building (text only: nothing from the server is ever parsed as HTML), formatting, the confirm dialog and the toast.
import Bowser from './bowser.mjs'

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (name === 'class') el.className = value
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value)
    else if (name in el && !name.includes('-')) el[name] = value
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  append(el, children)
  return el
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
}

export function replace(el, ...children) {
  el.replaceChildren()
  append(el, children)
  return el
}

const pad = (n) => String(n).padStart(2, '0')

// Local time, to the second, in a fixed shape that sorts and compares at a glance.
export function formatTime(iso) {
  if (!iso) return '—'
  const d = new Date(iso)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

export function formatDuration(seconds) {
  const s = Math.round(Math.abs(seconds))
  const two = (big, bigUnit, small, smallUnit) => (small === 0 ? `${big} ${bigUnit}` : `${big} ${bigUnit} ${small} ${smallUnit}`)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min`
  if (s < 86400) return two(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'min')
  return two(Math.floor(s / 86400), 'd', Math.floor((s % 86400) / 3600), 'h')
}

// "in 12 min" / "3 h 2 min ago", measured from this browser's clock (for reading only; the service decides every expiry).
export function relative(iso) {
  if (!iso) return '—'
  const seconds = (Date.parse(iso) - Date.now()) / 1000
  return seconds >= 0 ? `in ${formatDuration(seconds)}` : `${formatDuration(seconds)} ago`
}

export function timeCell(iso, mode = 'absolute') {
  if (!iso) return h('span', { class: 'muted' }, '—')
  return h('time', { datetime: iso, title: new Date(iso).toString() }, mode === 'relative' ? relative(iso) : formatTime(iso))
}

export function device(userAgent) {
  if (!userAgent) return '—'
  try {
    const { browser, os } = Bowser.parse(userAgent)
    const name = [browser.name, browser.version?.split('.')[0]].filter(Boolean).join(' ')
    const system = [os.name, os.versionName ?? os.version].filter(Boolean).join(' ')
    return [name, system].filter(Boolean).join(' · ') || userAgent.slice(0, 40)
  } catch {
    return userAgent.slice(0, 40)
  }
}

const STATE_LABELS = { active: 'Active', revoked: 'Revoked', expired: 'Expired', idle_timeout: 'Idle timeout' }
export function stateBadge(state) {
  return h('span', { class: `badge state-${state}` }, STATE_LABELS[state] ?? state)
}

export const EVENT_LABELS = {
  created: 'Created', rotated: 'Rotated', revoked: 'Revoked', expired: 'Expired', idle_timeout: 'Idle timeout',
  limit_evicted: 'Evicted by the limit', data_updated: 'Data updated',
}

// Ids are long; tables show their start and end (enough to tell rows apart), the whole id is in the title and on its page.
export const shortId = (id) => (id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id)
export const sessionLink = (id, { short = false } = {}) =>
  h('a', { href: `#/sessions/${encodeURIComponent(id)}`, class: 'mono', title: id }, short ? shortId(id) : id)
export const userLink = (userId) => h('a', { href: `#/users/${encodeURIComponent(userId)}` }, userId)

export function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' }, err?.message ?? String(err))
}

let toastTimer
export function toast(message) {
  const el = document.getElementById('toast')
  el.textContent = message
  el.classList.add('shown')
  clearTimeout(toastTimer)
  toastTimer = setTimeout(() => el.classList.remove('shown'), 5000)
}

// Asks for a reason; resolves with it, or null when cancelled. Focus goes to the reason and back where it was after.
export function confirmEnd({ title, text, action = 'End', reason = 'admin' }) {
  const dialog = document.getElementById('confirm')
  const form = document.getElementById('confirm-form')
  const input = document.getElementById('confirm-reason')
  const returnTo = document.activeElement
  document.getElementById('confirm-title').textContent = title
  document.getElementById('confirm-text').textContent = text
  document.getElementById('confirm-ok').textContent = action
  input.value = reason
  return new Promise((resolve) => {
    const finish = (value) => {
      form.removeEventListener('submit', onSubmit)
      cancel.removeEventListener('click', onCancel)
      dialog.removeEventListener('cancel', onCancel)
      if (dialog.open) dialog.close()
      if (returnTo instanceof HTMLElement && returnTo.isConnected) returnTo.focus()
      resolve(value)
    }
    const onSubmit = (event) => {
      event.preventDefault()
      const value = input.value.trim()
      if (value !== '') finish(value)
    }
    const onCancel = (event) => { event.preventDefault(); finish(null) }
    const cancel = document.getElementById('confirm-cancel')
    form.addEventListener('submit', onSubmit)
    cancel.addEventListener('click', onCancel)
    dialog.addEventListener('cancel', onCancel)
    dialog.showModal()
    input.focus()
    input.select()
  })
}

// A page's heading, focused after navigation so that keyboard and screen-reader users start at the top of the new page.
export function pageHeading(text, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', id: 'page-title' }, text), ...extra)
}
