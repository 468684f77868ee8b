// The lost-work example end to end in a real headless Chromium: `start.mjs` runs the service and two app instances, and a
// user signs in, types, is warned before the idle deadline, stays signed in, is signed out by the idle timeout, signs in
// again and gets the draft back. Screenshots go to .tap/artifacts/lost-work/.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { freshDatabase } from '../helpers/db.js'
import { ensureBuilt, freePort, ROOT } from '../support/process.js'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = path.join(ROOT, '.tap', 'artifacts', 'lost-work')
const IDLE_TIMEOUT = 8
const WARN_BEFORE = 4
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

// What the page functions below use of the browser (they run there, not in Node).
declare const document: { body: { dataset: Record<string, string | undefined> }; getElementById(id: string): { textContent: string | null } | null }
declare const localStorage: { getItem(key: string): string | null }

interface Ready {
  service: string
  apps: string[]
}

// Starts `node examples/lost-work/start.mjs` in its own process group; resolves with its READY line.
async function startExample(t: Test, env: Record<string, string>): Promise<{ ready: Ready; output: () => string }> {
  const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, 'examples', 'lost-work', 'start.mjs')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let output = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let gone = false
  void exited.then(() => { gone = true })
  t.teardown(async () => {
    if (gone) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => {
      // start.mjs stops its children itself; if it hangs, end its whole group (service and apps).
      try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ }
    }, 20_000)
    await exited
    clearTimeout(timer)
  })
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example did not get ready in 60 s:\n${output.slice(-3000)}`)), 60_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const line = output.split('\n').find((l) => l.startsWith('READY '))
      if (line !== undefined) {
        clearTimeout(timer)
        resolve(JSON.parse(line.slice('READY '.length)) as Ready)
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`the example exited before it was ready:\n${output.slice(-3000)}`))
    })
  })
  return { ready, output: () => output }
}

if (!existsSync(CHROMIUM)) {
  t.skip('chromium is not installed: apt-get install chromium (see README) to run the browser test', async () => {})
} else {
  t.test('lost-work: warned before the idle deadline, kept alive, and the draft survives an expiry and a re-login', async (t) => {
    t.setTimeout(180_000)
    await ensureBuilt(t)
    const { url, sql } = await freshDatabase(t)
    await sql.end()
    const [servicePort, portA, portB] = [await freePort(), await freePort(), await freePort()]
    const { ready, output } = await startExample(t, {
      DATABASE_URL: url,
      EXAMPLE_SERVICE_PORT: String(servicePort),
      EXAMPLE_APP_PORTS: `${portA},${portB}`,
      EXAMPLE_IDLE_TIMEOUT: String(IDLE_TIMEOUT),
    })
    const [appA, appB] = ready.apps

    const { chromium } = await import('playwright-core')
    const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'lost-work-chromium-'))
    t.teardown(() => rmSync(userDataDir, { recursive: true, force: true }))
    const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
    t.teardown(() => context.close())
    const page = context.pages()[0] ?? await context.newPage()
    const consoleLines: string[] = []
    page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`))
    page.on('pageerror', (err) => consoleLines.push(`pageerror: ${err.message}`))
    t.teardown(() => { if (consoleLines.length > 0) t.comment(`browser console:\n${consoleLines.join('\n')}`) })
    mkdirSync(ARTIFACTS, { recursive: true })
    const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true })
    const idleDeadline = async () => Date.parse((await page.locator('body').getAttribute('data-idle-expires-at')) ?? '')
    const formPath = `/form?warnBefore=${WARN_BEFORE}&touchEvery=1`

    try {
      // 1. Sign in on instance A.
      await page.goto(`${appA}/login?next=${encodeURIComponent(formPath)}`)
      await page.fill('#userId', 'alice')
      await page.fill('#password', 'demo')
      await Promise.all([page.waitForURL(/\/form\?/), page.click('#sign-in')])
      t.equal(await page.textContent('#instance'), 'A')
      await page.waitForSelector('body[data-idle-expires-at]')
      t.match(await page.textContent('#draft-note'), /kept in this browser/, 'the page says where the draft is kept (shared computers)')
      t.ok(await page.isVisible('#sign-out'), 'a Sign out button while signed in')
      await shot('01-signed-in-on-A')

      // 2. The same session on instance B; typing is activity, and keeps the session alive.
      await page.goto(`${appB}${formPath}`)
      t.equal(await page.textContent('#instance'), 'B', 'the session cookie works on the second instance')
      await page.waitForSelector('body[data-idle-expires-at]')
      const beforeTyping = await idleDeadline()
      const title = 'Trip to Lisbon'
      const body = 'Two nights for the customer workshop; the train was sold out, so I flew. Receipts attached.'
      await page.locator('#title').pressSequentially(title, { delay: 25 })
      await page.locator('#body').pressSequentially(body, { delay: 25 })
      await page.waitForFunction((before) => Date.parse(document.body.dataset.idleExpiresAt ?? '') > before, beforeTyping, { timeout: 10_000 })
      const afterTyping = await idleDeadline()
      t.ok(afterTyping > beforeTyping, 'typing touched the session: the idle deadline moved')
      t.comment(`typing for ${((title.length + body.length) * 25 / 1000).toFixed(1)} s moved idleExpiresAt by ${afterTyping - beforeTyping} ms`)

      // 3. The warning comes WARN_BEFORE seconds before the idle deadline; "stay signed in" extends it.
      await page.waitForSelector('#warning:not([hidden])', { timeout: (IDLE_TIMEOUT + 10) * 1000 })
      t.match(await page.textContent('#warning-text'), /^You will be signed out in \d+ seconds? — stay signed in\?$/)
      await shot('02-warning')
      const warnedDeadline = await idleDeadline()
      await page.click('#stay')
      await page.waitForFunction((before) => Date.parse(document.body.dataset.idleExpiresAt ?? '') > before, warnedDeadline, { timeout: 10_000 })
      await page.waitForSelector('#warning', { state: 'hidden' })
      const stayedDeadline = await idleDeadline()
      t.ok(stayedDeadline > warnedDeadline, '"stay signed in" extended idleExpiresAt')
      t.comment(`stay signed in: idleExpiresAt ${new Date(warnedDeadline).toISOString()} → ${new Date(stayedDeadline).toISOString()} (+${stayedDeadline - warnedDeadline} ms)`)
      await shot('03-stayed-signed-in')

      // 4. Nobody answers the next warning: the idle timeout ends the session; the page says why and keeps the draft.
      await page.waitForSelector('#signed-out:not([hidden])', { timeout: (IDLE_TIMEOUT + 15) * 1000 })
      t.equal(await page.locator('body').getAttribute('data-signed-out'), 'idle_timeout')
      t.match(await page.textContent('#signed-out-text'), /inactive for too long/)
      const kept = JSON.parse((await page.evaluate(() => localStorage.getItem('lost-work:draft:alice'))) ?? '{}') as { title?: string; body?: string }
      t.same({ title: kept.title, body: kept.body }, { title, body }, 'the draft was saved in localStorage before the expiry')
      t.notOk(await page.isVisible('#status'), 'no "Signed in as …" once the session has ended')
      t.notOk(await page.isVisible('#sign-out'), 'no Sign out button once the session has ended')
      await shot('04-signed-out-idle')

      // 5. Sign in again (on B): the draft comes back.
      await Promise.all([page.waitForURL(/\/login\?/), page.click('#relogin')])
      t.match(await page.textContent('#login-reason'), /inactive for too long/)
      await page.fill('#userId', 'alice')
      await page.fill('#password', 'demo')
      await Promise.all([page.waitForURL(/\/form\?/), page.click('#sign-in')])
      await page.waitForSelector('#restored:not([hidden])')
      t.equal(await page.inputValue('#title'), title)
      t.equal(await page.inputValue('#body'), body, 'the draft is restored after the re-login')
      await shot('05-draft-restored')

      // 6. Saving clears the local draft.
      await page.click('#save')
      await page.waitForFunction(() => /Saved on instance B/.test(document.getElementById('draft-state')?.textContent ?? ''), undefined, { timeout: 10_000 })
      t.equal(await page.evaluate(() => localStorage.getItem('lost-work:draft:alice')), null)
      await shot('06-saved')

      // 7. A new draft, then Sign out on purpose: the draft leaves this browser with the session.
      await page.locator('#title').pressSequentially('Second trip', { delay: 25 })
      await page.waitForFunction(() => localStorage.getItem('lost-work:draft:alice') !== null, undefined, { timeout: 10_000 })
      await Promise.all([page.waitForURL(/\/login\?/), page.click('#sign-out')])
      t.equal(await page.evaluate(() => localStorage.getItem('lost-work:draft:alice')), null, 'signing out on purpose clears the draft')
      await shot('07-signed-out-on-purpose')
      t.comment(`screenshots: ${path.relative(ROOT, ARTIFACTS)}/`)
    } catch (err) {
      await shot('failure').catch(() => undefined)
      t.comment(`example output:\n${output().slice(-3000)}`)
      throw err
    }
  })
}
