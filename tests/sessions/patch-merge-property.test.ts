// Property: PATCH data equals an independent RFC 7396 merge of random JSON objects, and version bumps exactly on change.
import fc from 'fast-check'
import t from 'tap'
import { setup } from '../helpers/app.js'
import { issue, patch } from './_support.js'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

const isObject = (v: Json | undefined): v is { [key: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v)

// RFC 7396, section 2, transcribed.
function mergePatch(target: Json | undefined, patchValue: Json): Json {
  if (!isObject(patchValue)) return patchValue
  const result: { [key: string]: Json } = isObject(target) ? { ...target } : {}
  for (const [name, value] of Object.entries(patchValue)) {
    if (value === null) delete result[name]
    else result[name] = mergePatch(result[name], value)
  }
  return result
}

// Few key names, so patches often hit existing members; JSON-safe strings and numbers that survive jsonb unchanged.
const key = fc.constantFrom('a', 'b', 'c', 'lang', 'n', 'x y', 'ü')
const scalar = fc.oneof(fc.boolean(), fc.integer({ min: -1000, max: 1000 }), fc.string({ maxLength: 8 }), fc.constant(null))
const { value } = fc.letrec<{ value: Json; object: Json }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.array(tie('value'), { maxLength: 3 }), tie('object')),
  object: fc.dictionary(key, tie('value'), { maxKeys: 4 }),
}))
const object = fc.dictionary(key, value, { maxKeys: 5 }) as fc.Arbitrary<{ [key: string]: Json }>

// Order-insensitive JSON equality, via a canonical serialisation with sorted keys.
function canonical(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`
  return JSON.stringify(v)
}

const { app } = await setup(t)

let run = 0
async function patchedAgrees(target: { [key: string]: Json }, patchValue: { [key: string]: Json }): Promise<boolean> {
  run += 1
  const { session } = await issue(app, { userId: `prop-${run}`, data: target })
  if (canonical(session.data as Json) !== canonical(target)) throw new Error(`stored ${JSON.stringify(session.data)}, sent ${JSON.stringify(target)}`)
  const res = await patch(app, session.id, patchValue)
  if (res.statusCode !== 200) throw new Error(`PATCH ${res.statusCode}: ${res.body}`)
  const got = res.json().session as { data: Json; version: number }
  const expected = mergePatch(target, patchValue)
  if (canonical(got.data) !== canonical(expected)) throw new Error(`got ${JSON.stringify(got.data)}, RFC 7396 says ${JSON.stringify(expected)}`)
  const changed = canonical(expected) !== canonical(target)
  if (got.version !== (changed ? 2 : 1)) throw new Error(`version ${got.version} after a ${changed ? 'change' : 'no-op'}`)
  return true
}

t.test('patch: data is the RFC 7396 merge of the stored data and the patch, version +1 exactly on change', async (t) => {
  const result = await fc.check(fc.asyncProperty(object, object, patchedAgrees), { numRuns: 50 })
  t.equal(result.failed, false, fc.defaultReportMessage(result) ?? 'property holds')
})

t.test('patch: the reference merge itself follows the RFC 7396 appendix examples', async (t) => {
  // A self-check of the oracle, so a wrong reference cannot hide a wrong service.
  const examples: Array<[Json, Json, Json]> = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ]
  for (const [target, patchValue, expected] of examples) t.same(mergePatch(target, patchValue), expected)
})
