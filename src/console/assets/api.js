// Calls to the service's own routes under /console/v1/ (the only place where the console's cookie counts) with that
// cookie; state-changing calls carry the session's CSRF token.
let csrfToken = null
let onSignedOut = () => {}

export function setCsrfToken(token) { csrfToken = token }
export function whenSignedOut(callback) { onSignedOut = callback }

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`)
    this.status = status
    this.code = body?.error?.code
    this.body = body
  }
}

export async function api(method, path, { query, body } = {}) {
  const url = new URL(path, window.location.origin)
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value))
  }
  const headers = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET' && csrfToken !== null) headers['x-csrf-token'] = csrfToken
  const res = await fetch(url, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) })
  if (res.status === 204) return null
  const data = await res.json().catch(() => null)
  if (!res.ok) {
    const error = new ApiError(res.status, data)
    if (res.status === 401 && !path.startsWith('/console/api/session')) onSignedOut(error)
    throw error
  }
  return data
}
