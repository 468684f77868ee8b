// The console in the deployment: the image carries its files, and deploy/nginx.conf passes /console/ to the nodes, where
// sign-in, the cookie and the CSRF check work through nginx (which forwards Host without its port).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parseSetCookie } from 'set-cookie-parser'
import { CONSOLE_CSP } from '../../src/console/routes.js'
import { ADMIN_KEY, buildNode, setup } from '../helpers/app.js'
import { findNginx, NGINX_MISSING, renderNginxConf, startNginx } from '../support/nginx.js'
import { freePort, ROOT } from '../support/process.js'

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8')

t.test('the image copies the console\'s files where dist/console/routes.js looks for them', async (t) => {
  t.match(read('Dockerfile'), /^COPY src\/console\/assets \.\/src\/console\/assets$/m)
})

t.test('nginx.conf passes /console/ to the session nodes, sign-in never replayed', async (t) => {
  const block = /location \/console\/ \{([\s\S]*?)\}/.exec(read('deploy/nginx.conf'))?.[1] ?? ''
  t.match(block, /proxy_pass http:\/\/session_nodes;/)
  t.match(block, /proxy_next_upstream error timeout;/)
})

const nginxBin = findNginx()
t.test('through nginx: the page with its CSP, sign-in, an admin read and a CSRF-checked action with the cookie', { skip: nginxBin === undefined ? NGINX_MISSING : false }, async (t) => {
  // Three nodes on one database (nginx.conf names each upstream address, so they must differ).
  const { app, url } = await setup(t)
  const nodes = [app, (await buildNode(t, url)).app, (await buildNode(t, url)).app]
  const addresses: string[] = []
  for (const node of nodes) {
    await node.listen({ host: '127.0.0.1', port: 0 })
    addresses.push(`127.0.0.1:${(node.server.address() as { port: number }).port}`)
  }
  const port = await freePort()
  const conf = renderNginxConf({
    NGINX_LISTEN: `127.0.0.1:${port}`,
    SESSION_UPSTREAM_1: addresses[0],
    SESSION_UPSTREAM_2: addresses[1],
    SESSION_UPSTREAM_3: addresses[2],
    APP_UPSTREAM: `127.0.0.1:${await freePort()}`,
    NGINX_AUTH_API_KEY: 'unused-0123456789abcdef',
  })
  await startNginx(t, nginxBin!, conf, port)
  const base = `http://127.0.0.1:${port}`

  const redirect = await fetch(`${base}/console`, { redirect: 'manual' })
  t.equal(redirect.status, 301)
  const page = await fetch(`${base}/console/`)
  t.equal(page.status, 200)
  t.equal(page.headers.get('content-security-policy'), CONSOLE_CSP)
  t.match(await page.text(), /<title>Sessions console<\/title>/)

  const signIn = await fetch(`${base}/console/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base },
    body: JSON.stringify({ key: ADMIN_KEY }),
  })
  t.equal(signIn.status, 200, 'the browser\'s Origin (with the port) matches the Host nginx forwards (without it)')
  const [cookie] = parseSetCookie(signIn.headers.get('set-cookie') ?? '')
  t.match(cookie, { name: 'console_sid', httpOnly: true, sameSite: 'Strict', path: '/console' })
  const { csrfToken } = await signIn.json() as { csrfToken: string }
  const headers = { cookie: `console_sid=${cookie.value}` }

  const stats = await fetch(`${base}/console/v1/admin/stats`, { headers })
  t.equal(stats.status, 200)
  t.equal((await fetch(`${base}/v1/admin/stats`, { headers })).status, 401, 'the cookie opens nothing on the plain /v1 routes')
  const refused = await fetch(`${base}/console/api/session`, { method: 'DELETE', headers: { ...headers, origin: 'http://evil.example' , 'x-csrf-token': csrfToken } })
  t.equal(refused.status, 403)
  const out = await fetch(`${base}/console/api/session`, { method: 'DELETE', headers: { ...headers, origin: base, 'x-csrf-token': csrfToken } })
  t.equal(out.status, 204)
  t.equal((await fetch(`${base}/console/v1/admin/stats`, { headers })).status, 401, 'signed out on every node')
})
