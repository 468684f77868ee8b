// The example's two pages: a login form, and a long form whose inline script warns before the idle deadline, keeps the
// session alive while the user types, saves the draft in localStorage before an expiry and restores it after a re-login.

const escape = (text) => String(text ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

// Why a session ended, in words a user understands (the service's `reason` and `revokeReason`).
const REASONS = {
  idle_timeout: 'you were inactive for too long',
  expired: 'your session reached its maximum length',
  not_found: 'your session is no longer known',
  revoked: 'your session was ended',
  logout: 'you signed out',
  password_change: 'your password was changed',
  session_limit: 'you signed in on too many devices',
  admin: 'an administrator ended your session',
}

const style = `
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
  label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
  input, textarea { width: 100%; box-sizing: border-box; font: inherit; padding: .4rem; }
  button, .button { font: inherit; padding: .45rem 1rem; margin-top: .75rem; cursor: pointer; }
  .notice { padding: .75rem 1rem; border-radius: .4rem; margin: 1rem 0; }
  .warning { background: #fff4d6; border: 1px solid #e0b100; }
  .error { background: #fde8e8; border: 1px solid #d33; }
  .info { background: #e8f3fd; border: 1px solid #3a83d3; }
  .muted { color: #666; font-size: .9rem; }
  header { display: flex; justify-content: space-between; align-items: baseline; }
  [hidden] { display: none !important; }
`

function layout(title, body) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escape(title)}</title><style>${style}</style></head>
<body>${body}</body>
</html>`
}

export function loginPage({ instance, next, reason, userId, error }) {
  const why = REASONS[reason]
  return layout('Sign in — lost-work example', `
<header><h1>Sign in</h1><span class="muted">instance ${escape(instance)}</span></header>
${why === undefined ? '' : `<p class="notice info" id="login-reason">You were signed out because ${escape(why)}.${reason === 'logout' ? ' Your draft was removed from this browser.' : ' Sign in again — your draft is kept in this browser.'}</p>`}
${error === undefined ? '' : `<p class="notice error">${escape(error)}</p>`}
${userId === undefined ? '' : `<p class="notice info">You are signed in as <b>${escape(userId)}</b>. <a href="${escape(next)}">Continue</a></p>`}
<form method="post" action="/login">
  <input type="hidden" name="next" value="${escape(next)}">
  <label for="userId">User</label>
  <input id="userId" name="userId" autocomplete="username" required maxlength="256">
  <label for="password">Password <span class="muted">(any password: this is a demo)</span></label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button id="sign-in" type="submit">Sign in</button>
</form>`)
}

// warnBefore and touchEvery are seconds; peers maps instance names to their base URLs.
export function formPage({ instance, userId, warnBefore, touchEvery, peers }) {
  const config = JSON.stringify({ instance, userId, warnBefore, touchEvery, reasons: REASONS }).replace(/</g, '\\u003c')
  const peerLinks = Object.entries(peers ?? {})
    .filter(([name]) => name !== instance)
    .map(([name, base]) => `<a href="${escape(base)}/form">instance ${escape(name)}</a>`)
    .join(', ')
  return layout('Expense report — lost-work example', `
<header>
  <h1>Expense report</h1>
  <form method="post" action="/logout" id="sign-out-form"><button type="submit" id="sign-out">Sign out</button></form>
</header>
<p class="muted" id="status">Signed in as <b>${escape(userId)}</b> on instance <b id="instance">${escape(instance)}</b>${peerLinks === '' ? '' : ` (the same session works on ${peerLinks})`}.
  Idle deadline: <time id="idle-expires">…</time>.</p>

<div class="notice warning" id="warning" role="alertdialog" aria-live="assertive" hidden>
  <span id="warning-text"></span>
  <button type="button" id="stay">Stay signed in</button>
</div>
<div class="notice error" id="signed-out" role="alert" hidden>
  <span id="signed-out-text"></span>
  <a class="button" id="relogin" href="/login">Sign in again</a>
</div>
<p class="notice info" id="restored" hidden></p>

<form id="doc">
  <label for="title">Title</label>
  <input id="title" name="title" maxlength="200">
  <label for="body">Justification (take your time)</label>
  <textarea id="body" name="body" rows="12"></textarea>
  <button type="submit" id="save">Save</button>
  <span class="muted" id="draft-state"></span>
</form>
<p class="muted" id="draft-note">Your unsaved draft is kept in this browser until you save it or sign out, so that an
  expired session never loses it. On a shared computer, sign out when you leave: that removes the draft.</p>

<script type="application/json" id="config">${config}</script>
<script>
(() => {
  const cfg = JSON.parse(document.getElementById('config').textContent)
  const $ = (id) => document.getElementById(id)
  const draftKey = 'lost-work:draft:' + cfg.userId
  let idleExpiresAt = NaN
  let expiresAt = NaN
  let lastTouch = Date.now()
  let signedOut = false
  let warnTimer, expireTimer, tickTimer, saveTimer

  const clock = (ms) => new Date(ms).toLocaleTimeString()
  const inWords = (ms) => {
    const s = Math.max(0, Math.round(ms / 1000))
    if (s >= 60) { const m = Math.round(s / 60); return m + (m === 1 ? ' minute' : ' minutes') }
    return s + (s === 1 ? ' second' : ' seconds')
  }
  const deadline = () => Math.min(idleExpiresAt, expiresAt)

  function saveDraft() {
    const draft = { title: $('title').value, body: $('body').value, at: Date.now() }
    if (draft.title === '' && draft.body === '') return
    localStorage.setItem(draftKey, JSON.stringify(draft))
    $('draft-state').textContent = 'Draft kept in this browser at ' + clock(draft.at) + '.'
  }

  function restoreDraft() {
    const text = localStorage.getItem(draftKey)
    if (text === null) return
    try {
      const draft = JSON.parse(text)
      $('title').value = draft.title ?? ''
      $('body').value = draft.body ?? ''
      $('restored').textContent = 'Your unsaved draft from ' + clock(draft.at) + ' was restored.'
      $('restored').hidden = false
    } catch { localStorage.removeItem(draftKey) }
  }

  // The middleware tells every authenticated answer when the session ends; the timers follow the latest answer.
  function readDeadlines(res) {
    const idle = Date.parse(res.headers.get('X-Session-Idle-Expires-At') ?? '')
    const absolute = Date.parse(res.headers.get('X-Session-Expires-At') ?? '')
    if (Number.isNaN(idle) || Number.isNaN(absolute)) return
    idleExpiresAt = idle
    expiresAt = absolute
    const time = $('idle-expires')
    time.textContent = clock(idle)
    time.dateTime = new Date(idle).toISOString()
    document.body.dataset.idleExpiresAt = new Date(idle).toISOString()
    schedule()
  }

  function schedule() {
    clearTimeout(warnTimer)
    clearTimeout(expireTimer)
    hideWarning()
    if (signedOut) return
    const now = Date.now()
    warnTimer = setTimeout(showWarning, Math.max(0, deadline() - cfg.warnBefore * 1000 - now))
    // Just after the deadline: ask the app whether the session really ended (activity elsewhere may have moved it).
    expireTimer = setTimeout(checkSession, Math.max(0, deadline() - now + 500))
  }

  function showWarning() {
    if (signedOut) return
    saveDraft()
    const update = () => {
      $('warning-text').textContent = 'You will be signed out in ' + inWords(deadline() - Date.now()) + ' — stay signed in?'
    }
    update()
    clearInterval(tickTimer)
    tickTimer = setInterval(update, 1000)
    $('warning').hidden = false
  }

  function hideWarning() {
    clearInterval(tickTimer)
    $('warning').hidden = true
  }

  function signOut(error) {
    if (signedOut) return
    saveDraft()
    signedOut = true
    clearTimeout(warnTimer)
    clearTimeout(expireTimer)
    hideWarning()
    const why = (error.reason === 'revoked' && cfg.reasons[error.revokeReason]) || cfg.reasons[error.reason] || 'your session ended'
    $('signed-out-text').textContent = 'You were signed out because ' + why + '. Your draft is saved in this browser — sign in again to continue. '
    const next = location.pathname + location.search
    $('relogin').href = '/login?next=' + encodeURIComponent(next) + '&reason=' + encodeURIComponent(error.revokeReason ?? error.reason ?? '')
    $('signed-out').hidden = false
    // The session is over: no "Signed in as …" and no Sign out button any more.
    $('status').hidden = true
    $('sign-out-form').hidden = true
    $('save').disabled = true
    document.body.dataset.signedOut = error.reason ?? 'unknown'
  }

  async function api(method, path, body) {
    const res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    if (res.status === 401) {
      const answer = await res.json().catch(() => ({}))
      signOut(answer.error ?? {})
      throw new Error('signed out')
    }
    if (!res.ok) throw new Error('HTTP ' + res.status)
    readDeadlines(res)
    return res.json()
  }

  async function touch() {
    lastTouch = Date.now()
    try { await api('POST', '/api/touch') } catch { /* signed out, or the service is briefly down: the timers stand */ }
  }

  async function checkSession() {
    saveDraft()
    try { await api('GET', '/api/session') } catch { /* handled in api() */ }
  }

  // Typing is activity: keep the draft and, now and then, the session.
  function onInput() {
    clearTimeout(saveTimer)
    saveTimer = setTimeout(saveDraft, 300)
    if (!signedOut && Date.now() - lastTouch >= cfg.touchEvery * 1000) void touch()
  }

  $('title').addEventListener('input', onInput)
  $('body').addEventListener('input', onInput)
  $('stay').addEventListener('click', () => void touch())
  // pagehide keeps the draft, except after signing out on purpose (the form below cleared it).
  let leaving = false
  window.addEventListener('pagehide', () => { if (!leaving) saveDraft() })
  // Signing out on purpose takes the draft out of this browser (a shared computer must not keep it).
  $('sign-out-form').addEventListener('submit', () => {
    leaving = true
    clearTimeout(saveTimer)
    localStorage.removeItem(draftKey)
  })
  $('doc').addEventListener('submit', async (event) => {
    event.preventDefault()
    saveDraft()
    try {
      const answer = await api('POST', '/api/save', { title: $('title').value, body: $('body').value })
      localStorage.removeItem(draftKey)
      $('restored').hidden = true
      $('draft-state').textContent = 'Saved on instance ' + answer.instance + ' at ' + clock(Date.parse(answer.savedAt)) + '.'
    } catch { /* signed out: the draft is kept */ }
  })

  restoreDraft()
  void checkSession()
})()
</script>`)
}
