// The README's kit examples ("Use it from your backend") compile as written: each ```ts block is type-checked against the
// built kit (its .d.ts files, as an app sees them) with strict, exactOptionalPropertyTypes and noUncheckedIndexedAccess.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ensureBuilt, ROOT } from '../support/process.js'

t.setTimeout(300_000)

t.test("the README's kit examples compile under strict settings", async (t) => {
  await ensureBuilt(t)
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const start = readme.indexOf('## Use it from your backend')
  t.ok(start >= 0, 'README has the section')
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1))
  const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!)
  t.ok(blocks.length >= 3, 'an example for Fastify, Express and the client')
  t.ok(blocks.some((b) => b.includes("'@session-service/client/fastify'")), 'a Fastify example')
  t.ok(blocks.some((b) => b.includes("'@session-service/client/express'")), 'an Express example')

  // Inside the checkout, so that the kit resolves through node_modules to packages/client/dist, as an installed copy would.
  const dir = path.join(ROOT, '.tap', 'readme-kit')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ private: true, type: 'module' }))
  const files = blocks.map((code, i) => {
    writeFileSync(path.join(dir, `example-${i + 1}.ts`), code)
    return `example-${i + 1}.ts`
  })
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'node16', moduleResolution: 'node16', types: ['node'], strict: true,
      exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, esModuleInterop: true, skipLibCheck: false, noEmit: true,
    },
    files,
  }))
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { cwd: dir, encoding: 'utf8', timeout: 240_000 })
  t.equal(tsc.status, 0, `tsc passes on the README's examples:\n${tsc.stdout}${tsc.stderr}`)
})
