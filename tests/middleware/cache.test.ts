// The app node's cache on its own: TTL bounded by the session's deadlines, a size bound, eviction by session, and the cookie reader.
import t from 'tap'
import type { Session } from '../../packages/client/src/types.js'
import { SessionCache } from '../../packages/client/src/cache.js'
import { cleanText, readCookie } from '../../packages/client/src/core.js'

const NOW = Date.parse('2026-11-23T08:00:00.000Z')
const iso = (ms: number) => new Date(ms).toISOString()

function session(id: string, { idleInMs = 3_600_000, absoluteInMs = 86_400_000 } = {}): Session {
  return {
    id, userId: 'u', policy: 'default', data: {}, version: 1,
    createdAt: iso(NOW), lastSeenAt: iso(NOW), idleExpiresAt: iso(NOW + idleInMs), expiresAt: iso(NOW + absoluteInMs), ip: null, userAgent: null,
  }
}

t.test('an entry lives for the TTL, and never past idleExpiresAt or expiresAt', async (t) => {
  const cache = new SessionCache(5000, 10)
  cache.set('ttl', session('s_1'), NOW)
  t.ok(cache.get('ttl', NOW + 4999))
  t.notOk(cache.get('ttl', NOW + 5000), 'gone at the TTL')

  cache.set('idle', session('s_2', { idleInMs: 1200 }), NOW)
  t.ok(cache.get('idle', NOW + 1199))
  t.notOk(cache.get('idle', NOW + 1200), 'gone at idleExpiresAt')

  cache.set('abs', session('s_3', { absoluteInMs: 800 }), NOW)
  t.notOk(cache.get('abs', NOW + 800), 'gone at expiresAt')

  cache.set('past', session('s_4', { idleInMs: -1 }), NOW)
  t.equal(cache.size, 0, 'a session already past a deadline is not kept')
})

t.test('the size bound drops the least recently used entry', async (t) => {
  const cache = new SessionCache(5000, 2)
  cache.set('a', session('s_a'), NOW)
  cache.set('b', session('s_b'), NOW)
  cache.get('a', NOW)
  cache.set('c', session('s_c'), NOW)
  t.equal(cache.size, 2)
  t.ok(cache.get('a', NOW))
  t.notOk(cache.get('b', NOW), 'b was the least recently used')
})

t.test('evictSession drops every token of the session; flush drops all', async (t) => {
  const cache = new SessionCache(5000, 10)
  cache.set('old-token', session('s_r'), NOW)
  cache.set('new-token', session('s_r'), NOW)
  cache.set('other', session('s_o'), NOW)
  t.equal(cache.evictSession('s_r'), 2)
  t.equal(cache.size, 1)
  t.equal(cache.evictSession('s_r'), 0)
  cache.flush()
  t.equal(cache.size, 0)
})

t.test('TTL 0 keeps nothing', async (t) => {
  const cache = new SessionCache(0, 10)
  cache.set('a', session('s_a'), NOW)
  t.equal(cache.size, 0)
})

t.test('readCookie finds the named cookie among others', async (t) => {
  t.equal(readCookie('theme=dark; sid=abc_-1; x=y', 'sid'), 'abc_-1')
  t.equal(readCookie('xsid=no; sid="quoted"', 'sid'), 'quoted')
  t.equal(readCookie('theme=dark', 'sid'), undefined)
  t.equal(readCookie('sid=', 'sid'), undefined)
  t.equal(readCookie(undefined, 'sid'), undefined)
  t.equal(readCookie('__Host-sid=tok', '__Host-sid'), 'tok')
})

t.test('cleanText keeps what the contract accepts for ip and userAgent', async (t) => {
  t.equal(cleanText('Mozilla/5.0\u0000\u001f x', 1024), 'Mozilla/5.0 x')
  t.equal(cleanText('a'.repeat(2000), 1024)?.length, 1024)
  t.equal(cleanText('\u0007', 256), undefined)
  t.equal(cleanText('bad\uD800surrogate', 256), 'badsurrogate')
  t.equal(cleanText(undefined, 256), undefined)
})
