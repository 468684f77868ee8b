// The validator compiler's additions to ajv: coerced numbers must be finite, times must be ones JavaScript and Postgres both
// hold, and errors keep nothing of the caller's text.
import type { Ajv, ErrorObject } from 'ajv'
import addFormatsModule from 'ajv-formats'

// ajv-formats is CommonJS with a default export, which NodeNext types as the module object.
const formats = (addFormatsModule as unknown as { default: { get: (name: string) => { validate: (s: string) => boolean; compare: (a: string, b: string) => number | undefined } } }).default

// The instants both `new Date()` and Postgres's timestamptz hold, so that an accepted time never fails further down.
const EARLIEST_MS = Date.parse('0001-01-01T00:00:00.000Z')
const LATEST_MS = Date.parse('9999-12-31T23:59:59.999Z')

// RFC 3339 as ajv-formats checks it, and also an instant within years 0001–9999 (UTC, after the offset is applied) that
// JavaScript can parse: a leap second (23:59:60) is valid RFC 3339 but an Invalid Date to JavaScript, year 0000 is
// out of Postgres's range, and 9999-12-31T23:59:59-01:00 is in year 10000.
export function addDateTimeFormat(ajv: Ajv): void {
  const rfc3339 = formats.get('date-time')
  ajv.addFormat('date-time', {
    type: 'string',
    validate: (value: string) => {
      if (!rfc3339.validate(value)) return false
      const ms = Date.parse(value)
      return Number.isFinite(ms) && ms >= EARLIEST_MS && ms <= LATEST_MS
    },
    compare: rfc3339.compare,
  })
}

// Where in a validated query string, params or headers object a number is not finite ("" for the whole), or undefined.
function nonFinitePath(value: unknown, path: string): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path
  if (value === null || typeof value !== 'object') return undefined
  for (const [key, item] of Object.entries(value)) {
    const found = nonFinitePath(item, `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`)
    if (found !== undefined) return found
  }
  return undefined
}

interface Validator {
  (data: unknown): boolean
  errors?: ErrorObject[] | null
}

// ajv coerces "Infinity" and "1e309" to Infinity after its type check, and skips minimum/maximum for non-finite numbers
// (ajv-validator/ajv#2212, fastify/fastify#6718): a coerced number must also be finite.
export function refuseNonFinite(validate: Validator): Validator {
  const checked: Validator = (data) => {
    if (!validate(data)) {
      checked.errors = validate.errors
      return false
    }
    const path = nonFinitePath(data, '')
    checked.errors = path === undefined ? null : [{ instancePath: path, schemaPath: '#/type', keyword: 'type', params: { type: 'number' }, message: 'must be a finite number' }]
    return path === undefined
  }
  return checked
}

type SchemaNode = { properties?: Record<string, SchemaNode>; items?: SchemaNode }

// The part of instancePath that names properties the schema declares (or array items): a property the caller made up
// (under propertyNames, patternProperties or an additionalProperties schema) is caller text and stops the path there.
function declaredPath(schema: SchemaNode, instancePath: string): { path: string; at: SchemaNode | undefined } {
  let at: SchemaNode | undefined = schema
  let path = ''
  for (const raw of instancePath.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    const next: SchemaNode | undefined = /^\d+$/.test(segment) && at?.items !== undefined ? at.items
      : at?.properties !== undefined && Object.hasOwn(at.properties, segment) ? at.properties[segment] : undefined
    if (next === undefined) return { path, at: undefined }
    at = next
    path += `/${raw}`
  }
  return { path, at }
}

// contract: error bodies never echo input. ajv builds messages from the schema (a limit, a type, a pattern), but its params
// and paths can hold caller text (the name of an unknown property for additionalProperties, propertyNames,
// unevaluatedProperties): each error keeps its keyword and message, a path made only of declared names, and, for an
// unknown property, the names the schema accepts instead of the one sent.
export function withoutEchoes(schema: unknown, validate: Validator): Validator {
  const checked: Validator = (data) => {
    const valid = validate(data)
    checked.errors = validate.errors?.map((error) => {
      const { path, at } = declaredPath(schema as SchemaNode, error.instancePath)
      const params = error.keyword === 'additionalProperties' || error.keyword === 'unevaluatedProperties'
        ? { allowed: Object.keys(at?.properties ?? {}) }
        : {}
      return { instancePath: path, schemaPath: error.schemaPath, keyword: error.keyword, params, message: error.message }
    }) ?? null
    return valid
  }
  return checked
}
