// The console's shell: who is signed in, sign-in and sign-out, and the hash router that draws one page at a time.
import { api, setCsrfToken, whenSignedOut } from './api.js'
import { errorBox, h, pageHeading, replace } from './ui.js'
import { overviewPage } from './page-overview.js'
import { sessionsPage } from './page-sessions.js'
import { sessionPage } from './page-session.js'
import { userPage } from './page-user.js'
import { auditPage } from './page-audit.js'

const main = document.getElementById('main')
const nav = document.getElementById('nav')
const who = document.getElementById('who')
const signOutButton = document.getElementById('sign-out')
const banner = document.getElementById('banner')
let me = null
// Each page may leave a function that stops its timers when another page is drawn.
let leavePage = null

function showSignedIn(identity) {
  me = identity
  setCsrfToken(identity.csrfToken)
  nav.hidden = false
  who.textContent = identity.mode === 'open' ? 'open access (no API keys)' : `Signed in as ${identity.actor}`
  signOutButton.hidden = identity.mode === 'open'
  banner.hidden = identity.mode !== 'open'
  banner.textContent = identity.mode === 'open'
    ? 'No API keys are configured: this console is open to anyone on this machine, with admin rights. Set ADMIN_API_KEYS before the service listens anywhere else.'
    : ''
}

function showSignedOut(message, kind = 'error') {
  me = null
  setCsrfToken(null)
  nav.hidden = true
  who.textContent = ''
  signOutButton.hidden = true
  if (leavePage) leavePage()
  leavePage = null
  drawSignIn(message, kind)
}

function drawSignIn(message, kind) {
  const error = h('div', { class: kind === 'notice' ? 'notice' : 'error', role: 'alert', id: 'sign-in-error', hidden: !message }, message ?? '')
  const input = h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: false, 'aria-describedby': 'key-help' })
  const button = h('button', { type: 'submit', class: 'button primary', id: 'sign-in' }, 'Sign in')
  const form = h('form', { class: 'card sign-in', id: 'sign-in-form' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted', id: 'key-help' }, 'Enter an admin API key (one of ADMIN_API_KEYS). It is checked once and never kept by the browser: the console keeps a session of its own, which ends when you sign out, after a spell without activity (15 minutes by default) or after 8 hours.'),
    h('label', { for: 'key' }, 'Admin API key'),
    input,
    error,
    h('div', { class: 'actions' }, button))
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    button.disabled = true
    try {
      const identity = await api('POST', '/console/api/session', { body: { key: input.value } })
      input.value = ''
      showSignedIn(identity)
      if (!window.location.hash || window.location.hash === '#/') window.location.hash = '#/overview'
      else route()
    } catch (err) {
      input.value = ''
      error.hidden = false
      error.className = 'error'
      error.textContent = err.status === 401 ? 'That key is not an admin API key.'
        : err.status === 429 ? `Too many wrong keys from this address. Try again in ${err.body?.error?.retryAfter ?? 'a few'} seconds.`
          : err.message
      input.focus()
    } finally {
      button.disabled = false
    }
  })
  replace(main, h('div', { class: 'sign-in-wrap' }, form))
  input.focus()
}

const PAGES = [
  [/^\/overview$/, () => overviewPage()],
  [/^\/sessions$/, (m, query) => sessionsPage(query)],
  [/^\/sessions\/([^/]+)$/, (m) => sessionPage(decodeURIComponent(m[1]), me)],
  [/^\/users\/([^/]+)$/, (m) => userPage(decodeURIComponent(m[1]))],
  [/^\/audit$/, (m, query) => auditPage(query)],
]

async function route() {
  if (me === null) return
  const hash = window.location.hash.replace(/^#/, '') || '/overview'
  const [pathPart, queryPart = ''] = hash.split('?')
  const query = new URLSearchParams(queryPart)
  if (leavePage) leavePage()
  leavePage = null
  for (const link of nav.querySelectorAll('a[data-page]')) {
    const current = pathPart.startsWith(`/${link.dataset.page}`)
    if (current) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  const found = PAGES.find(([pattern]) => pattern.test(pathPart))
  if (found === undefined) {
    replace(main, pageHeading('Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/overview' }, 'Back to the overview')))
    return
  }
  try {
    const page = await found[1](pathPart.match(found[0]), query)
    replace(main, page.node)
    leavePage = page.leave ?? null
    document.title = `${page.title} · Sessions console`
    document.getElementById('page-title')?.focus({ preventScroll: true })
  } catch (err) {
    if (err.status !== 401) replace(main, pageHeading('Something went wrong'), errorBox(err))
  }
}

signOutButton.addEventListener('click', async () => {
  try {
    await api('DELETE', '/console/api/session')
  } finally {
    showSignedOut('You are signed out.', 'notice')
  }
})

document.getElementById('jump-user').addEventListener('submit', (event) => {
  event.preventDefault()
  const input = document.getElementById('jump-user-id')
  const userId = input.value.trim()
  if (userId !== '') window.location.hash = `#/users/${encodeURIComponent(userId)}`
  input.value = ''
})

whenSignedOut(() => showSignedOut('Your console session ended. Sign in again.'))
window.addEventListener('hashchange', route)

try {
  showSignedIn(await api('GET', '/console/api/session'))
  route()
} catch (err) {
  if (err.status === 401) showSignedOut()
  else replace(main, errorBox(err))
}
