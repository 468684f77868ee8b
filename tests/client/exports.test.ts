// The package's entry points (package.json "exports") load from dist/, and every name the README's "Use it from your
// backend" examples import from them exists.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ensureBuilt, ROOT } from '../support/process.js'

const ENTRIES = ['@session-service/client', '@session-service/client/fastify', '@session-service/client/express'] as const

t.test('@session-service/client, /fastify and /express load through the exports map', async (t) => {
  await ensureBuilt(t)
  const client = await import('@session-service/client')
  t.type(client.createClient, 'function')
  t.type(client.SessionServiceError, 'function')
  const fastify = await import('@session-service/client/fastify')
  t.type(fastify.sessionPlugin, 'function')
  t.equal((fastify.sessionPlugin as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')], true, 'not encapsulated')
  const express = await import('@session-service/client/express')
  t.type(express.sessionMiddleware, 'function')
  t.type(express.sessionOf, 'function')
})

t.test('the README examples import only names the entry points export', async (t) => {
  await ensureBuilt(t)
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const start = readme.indexOf('## Use it from your backend')
  t.ok(start >= 0, 'README has the section')
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1))
  const imports = [...section.matchAll(/import \{([^}]+)\} from '(@session-service\/client(?:\/[a-z]+)?)'/g)]
  t.ok(imports.length >= 3, 'each example imports from the package')
  for (const [, names, entry] of imports) {
    t.ok((ENTRIES as readonly string[]).includes(entry), `${entry} is an entry point`)
    const module = (await import(entry)) as Record<string, unknown>
    // Type-only names (import { type X }) have no value to find.
    for (const name of names.split(',').map((n) => n.trim()).filter((n) => n !== '' && !n.startsWith('type '))) t.ok(name in module, `${entry} exports ${name}`)
  }
})
