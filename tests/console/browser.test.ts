// The operator console in a real headless Chromium under its own CSP: sign in (and a wrong key), the overview's figures
// against GET /v1/admin/stats, sessions filtered by IP, ending a session (validate then refuses its token with the
// reason), a user's "sign out everywhere", the session and audit pages, sign-out, and keyboard-only use; axe-core on each
// page. Screenshots go to docs/console/ (shown in the README) and .tap/artifacts/console/.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import t, { type Test } from 'tap'
import { ADMIN_KEY, APP_KEY, call, setup } from '../helpers/app.js'
import { ageSession } from '../helpers/db.js'
import { validate } from '../helpers/sessions.js'
import { assertSessionInvalid, issue, type Issued } from '../sessions/_support.js'
import { ROOT } from '../support/process.js'

const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const ARTIFACTS = path.join(ROOT, '.tap', 'artifacts', 'console')
const DOCS = path.join(ROOT, 'docs', 'console')
const AXE_SOURCE = existsSync(CHROMIUM) ? readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8') : ''

// What the page functions below use of the browser (they run there, not in Node).
interface FocusedElement { id: string; tagName: string; textContent: string | null; dataset: Record<string, string | undefined>; getAttribute(name: string): string | null }
declare const document: { activeElement: FocusedElement | null; cookie: string; querySelectorAll(selector: string): ArrayLike<{ textContent: string | null }> }
declare const localStorage: { length: number }
declare const sessionStorage: { length: number }
declare const axe: { run(context: unknown, options: unknown): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }> }> }

const UA = {
  chromeWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  firefoxLinux: 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  edge: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0',
  safariMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  android: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
}

if (!existsSync(CHROMIUM)) {
  t.skip('chromium is not installed: apt-get install chromium (see README) to run the console\'s browser tests', async () => {})
} else {
  // Six scenarios in one browser, with axe on each page: about two minutes on a busy two-core machine.
  t.setTimeout(360_000)
  const { app, sql } = await setup(t, { SESSION_POLICIES: '{"finance":{"idleTimeout":900,"absoluteTimeout":28800}}' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const base = `http://127.0.0.1:${port}`

  // A small, plausible population: several users, devices and networks, some sessions already ended.
  const seed = async (userId: string, ip: string, userAgent: string, extra: Record<string, unknown> = {}) =>
    issue(app, { userId, ip, userAgent, data: { lang: 'en_US', tz: 'Europe/Lisbon' }, ...extra })
  const alice = [
    await seed('alice', '203.0.113.7', UA.chromeWindows, { data: { lang: 'pt_PT', tz: 'Europe/Lisbon', companies: [1, 3] } }),
    await seed('alice', '203.0.113.8', UA.iphone),
    await seed('alice', '198.51.100.23', UA.firefoxLinux),
  ]
  const bob = [await seed('bob', '192.0.2.44', UA.edge), await seed('bob', '203.0.113.90', UA.android)]
  const carol = await seed('carol', '203.0.113.50', UA.safariMac, { policy: 'finance' })
  const dave = await seed('dave', '198.51.100.4', UA.firefoxLinux)
  const erin = await seed('erin', '192.0.2.200', UA.chromeWindows)
  const frank = await seed('frank', '198.51.100.77', UA.android)
  for (const userId of ['grace', 'heidi', 'ivan']) await seed(userId, '192.0.2.10', UA.chromeWindows)
  // A session with a history for its timeline: rotated after a privilege change, then its data changed.
  await call(app, { method: 'POST', url: '/v1/sessions/rotate', payload: { token: alice[0].token } })
  await call(app, { method: 'PATCH', url: `/v1/sessions/${alice[0].session.id}`, payload: { data: { theme: 'dark' } } })
  await call(app, { method: 'POST', url: '/v1/sessions/revoke', payload: { token: dave.token } })
  await call(app, { method: 'DELETE', url: `/v1/sessions/${frank.session.id}?reason=password_change` })
  await ageSession(sql, erin.session.id, { seconds: 7300 })
  await ageSession(sql, carol.session.id, { seconds: 600 })
  void APP_KEY

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
  t.teardown(() => browser.close())
  mkdirSync(ARTIFACTS, { recursive: true })
  mkdirSync(DOCS, { recursive: true })

  async function newPage(t: Test) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } })
    t.teardown(() => context.close())
    const page = await context.newPage()
    const problems: string[] = []
    page.on('console', (message) => {
      const text = message.text()
      // 401s are expected: the page asks who is signed in before anyone is, and a wrong key is answered 401.
      if (/status of 401/.test(text)) return
      if (/Content Security Policy|Refused to/i.test(text) || message.type() === 'error') problems.push(`${message.type()}: ${text}`)
    })
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`))
    return { context, page, problems }
  }

  type Page = Awaited<ReturnType<typeof newPage>>['page']

  async function shot(page: Page, name: string) {
    const file = path.join(ARTIFACTS, `${name}.png`)
    await page.screenshot({ path: file, fullPage: true })
    copyFileSync(file, path.join(DOCS, `${name}.png`))
  }

  // axe-core's source goes in through DevTools (an inline script would be refused by the CSP, as it should be).
  async function accessibility(t: Test, page: Page, name: string) {
    if (!(await page.evaluate('typeof axe !== "undefined"'))) await page.evaluate(AXE_SOURCE)
    const { violations } = await page.evaluate(() => axe.run(document, { resultTypes: ['violations'] }))
    const grave = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    t.same(grave.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')})`), [], `${name}: no serious or critical axe violations`)
    const minor = violations.filter((v) => !grave.includes(v))
    if (minor.length > 0) t.comment(`${name}: minor axe findings: ${minor.map((v) => `${v.impact} ${v.id}`).join(', ')}`)
  }

  async function signIn(page: Page, key = ADMIN_KEY) {
    await page.goto(`${base}/console/`)
    await page.fill('#key', key)
    await page.click('#sign-in')
  }

  const revokedWith = async (t: Test, issued: Issued, reason: string) => assertSessionInvalid(t, await validate(app, issued.token), 'revoked', reason)

  t.test('a wrong key is refused and the form says so; the key is not kept anywhere', async (t) => {
    const { page, problems } = await newPage(t)
    await signIn(page, 'not-the-key-0123456789')
    await page.waitForSelector('#sign-in-error:not([hidden])')
    t.match(await page.textContent('#sign-in-error'), /not an admin API key/)
    t.equal(await page.inputValue('#key'), '', 'the field is emptied')
    await accessibility(t, page, 'sign-in')
    await shot(page, 'sign-in-wrong-key')
    t.same(problems, [], 'no CSP violation or script error')
  })

  t.test('sign in, the overview\'s figures equal GET /v1/admin/stats, sessions filtered by IP, end one from the console', async (t) => {
    const { page, context, problems } = await newPage(t)
    await signIn(page)
    await page.waitForSelector('[data-stat="active"]')
    t.match(await page.textContent('#who'), /console:ops/)
    const loadStarted = Date.now()
    await page.reload()
    await page.waitForSelector('[data-stat="active"]')
    t.comment(`overview loaded (page, modules, session check, GET /v1/admin/stats, drawn) in ${Date.now() - loadStarted} ms`)
    const cookies = await context.cookies()
    const consoleCookie = cookies.find((c) => c.name === 'console_sid')
    t.match(consoleCookie, { httpOnly: true, sameSite: 'Strict', path: '/console' })
    t.equal(await page.evaluate(() => document.cookie), '', 'no cookie readable by scripts')
    t.same(await page.evaluate(() => [localStorage.length, sessionStorage.length]), [0, 0], 'nothing in web storage')
    t.notMatch(await page.content(), new RegExp(ADMIN_KEY), 'the key is not in the page')

    const stats = (await call(app, { method: 'GET', url: '/v1/admin/stats', key: ADMIN_KEY })).json()
    for (const key of ['active', 'activeUsers', 'revoked', 'expired', 'idleTimeout']) {
      t.equal(await page.textContent(`[data-stat="${key}"]`), stats[key].toLocaleString('en-US'), `overview ${key} = ${stats[key]}`)
    }
    for (const [reason, count] of Object.entries(stats.revokedByReason as Record<string, number>)) {
      t.equal(await page.textContent(`[data-block="by-reason"] [data-key="${reason}"]`), String(count), `revoked by ${reason}`)
    }
    await accessibility(t, page, 'overview')
    await shot(page, 'overview')

    await page.click('nav a[data-page="sessions"]')
    await page.waitForSelector('#session-filters')
    await page.fill('#ip', '203.0.113.0/24')
    await page.click('#apply-filters')
    await page.waitForSelector('table.data tbody tr')
    await page.waitForFunction(() => !Array.from(document.querySelectorAll('table.data tbody td.mono')).some((td) => !/^203\.0\.113\./.test(td.textContent ?? '')))
    const shown = (await page.locator('table.data tbody td.mono').allTextContents()).sort()
    const api = (await call(app, { method: 'GET', url: '/v1/admin/sessions?ip=203.0.113.0%2F24', key: ADMIN_KEY })).json()
    t.same(shown, api.sessions.map((s: { session: { ip: string } }) => s.session.ip).sort(), 'the table shows exactly the listing for 203.0.113.0/24')
    t.ok(shown.length === 4 && shown.every((ip) => ip.startsWith('203.0.113.')))
    t.match(await page.textContent(`tr[data-session-id="${alice[1].session.id}"]`), /Safari 17 · iOS 17/, 'the device is parsed from the user agent')
    await accessibility(t, page, 'sessions')
    await shot(page, 'sessions')

    await page.click(`button.end-one[data-session-id="${alice[1].session.id}"]`)
    await page.waitForSelector('dialog#confirm[open]')
    await page.fill('#confirm-reason', 'lost_phone')
    await accessibility(t, page, 'end-session dialog')
    await shot(page, 'end-session-dialog')
    await page.click('#confirm-ok')
    await page.waitForSelector('#toast.shown')
    t.match(await page.textContent('#toast'), /Ended 1 session \(reason: lost_phone\)/)
    await revokedWith(t, alice[1], 'lost_phone')
    await page.waitForSelector(`tr[data-session-id="${alice[1].session.id}"][data-state="revoked"]`)

    await page.goto(`${base}/console/#/sessions/${alice[1].session.id}`)
    await page.waitForSelector('#timeline')
    t.match(await page.textContent('#timeline'), /Revoked · lost_phone[\s\S]*by console:ops/)
    await page.goto(`${base}/console/#/sessions/${alice[0].session.id}`)
    await page.waitForSelector('#session-data')
    t.same(JSON.parse((await page.textContent('#session-data')) ?? ''), { lang: 'pt_PT', tz: 'Europe/Lisbon', companies: [1, 3], theme: 'dark' })
    t.match(await page.textContent('#timeline'), /Created[\s\S]*Rotated[\s\S]*Data updated/, 'the timeline, oldest first')
    await accessibility(t, page, 'session')
    await shot(page, 'session')
    t.same(problems, [], 'no CSP violation or script error')
  })

  t.test('a user\'s page: devices, how past sessions ended, and "sign out everywhere"', async (t) => {
    const { page, problems } = await newPage(t)
    await signIn(page)
    await page.waitForSelector('[data-stat="active"]')
    await page.fill('#jump-user-id', 'alice')
    await page.press('#jump-user-id', 'Enter')
    await page.waitForSelector('#ended-sessions')
    t.match(await page.textContent('#ended-sessions'), /lost_phone[\s\S]*console:ops/, 'the session ended earlier, how and by whom')
    await accessibility(t, page, 'user')
    await shot(page, 'user')

    await page.goto(`${base}/console/#/users/bob`)
    await page.waitForSelector('#sign-out-everywhere:not([disabled])')
    await page.click('#sign-out-everywhere')
    await page.fill('#confirm-reason', 'password_reset')
    await page.click('#confirm-ok')
    await page.waitForSelector('#toast.shown')
    for (const issued of bob) await revokedWith(t, issued, 'password_reset')
    await page.waitForSelector('#sign-out-everywhere[disabled]')
    t.same(problems, [], 'no CSP violation or script error')
  })

  t.test('the audit log filters by type', async (t) => {
    const { page, problems } = await newPage(t)
    await signIn(page)
    await page.waitForSelector('[data-stat="active"]')
    await page.click('nav a[data-page="audit"]')
    await page.waitForSelector('#events')
    await page.selectOption('#type', 'revoked')
    await page.click('#audit-filters button[type="submit"]')
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#events tbody tr td:nth-child(2)')).every((td) => td.textContent === 'Revoked'))
    const actors = await page.locator('#events tbody tr td:nth-child(5)').allTextContents()
    t.ok(actors.includes('console:ops') && actors.includes('app'), 'revocations by the console and by an app')
    await accessibility(t, page, 'audit')
    await shot(page, 'audit')
    t.same(problems, [], 'no CSP violation or script error')
  })

  t.test('sign-out ends the console session: the cookie opens nothing any more', async (t) => {
    const { page, context, problems } = await newPage(t)
    await signIn(page)
    await page.waitForSelector('[data-stat="active"]')
    const cookie = (await context.cookies()).find((c) => c.name === 'console_sid')!
    await page.click('#sign-out')
    await page.waitForSelector('#sign-in-form')
    t.match(await page.textContent('#sign-in-error'), /signed out/)
    const res = await app.inject({ method: 'GET', url: '/console/v1/admin/stats', headers: { cookie: `console_sid=${cookie.value}` } })
    t.equal(res.statusCode, 401, 'the old cookie is refused')
    await shot(page, 'signed-out')
    t.same(problems, [], 'no CSP violation or script error')
  })

  t.test('keyboard only: sign in, go to the sessions, end one', async (t) => {
    const { page, problems } = await newPage(t)
    const target = await seed('keyboard-user', '192.0.2.77', UA.firefoxLinux)
    await page.goto(`${base}/console/#/sessions?userId=keyboard-user`)
    await page.waitForSelector('#key')
    t.equal(await page.evaluate(() => document.activeElement?.id), 'key', 'the key field has the focus')
    await page.keyboard.type(ADMIN_KEY)
    await page.keyboard.press('Enter')
    const tabTo = async (what: string, test: string) => {
      for (let i = 0; i < 80; i++) {
        await page.keyboard.press('Tab')
        if (await page.evaluate(test)) return
      }
      throw new Error(`Tab never reached ${what}`)
    }
    await page.waitForSelector(`button.end-one[data-session-id="${target.session.id}"]`)
    await tabTo('the End button', `document.activeElement?.dataset?.sessionId === ${JSON.stringify(target.session.id)}`)
    await page.keyboard.press('Enter')
    await page.waitForSelector('dialog#confirm[open]')
    t.equal(await page.evaluate(() => document.activeElement?.id), 'confirm-reason', 'the dialog focuses the reason')
    await page.keyboard.press('Control+A')
    await page.keyboard.type('keyboard_only')
    await page.keyboard.press('Enter')
    await page.waitForSelector('#toast.shown')
    await revokedWith(t, target, 'keyboard_only')
    t.same(problems, [], 'no CSP violation or script error')
  })
}
