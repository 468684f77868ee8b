// The ip filter of the admin listings: one address (a /32 or /128 block) or a CIDR block, checked before any query.
import { isIP } from 'node:net'
import { invalidRequest } from '../errors.js'

// The block in the form Postgres's inet reads, e.g. "203.0.113.0/24"; a 400 for anything else.
export function parseIpFilter(value: string): string {
  const slash = value.indexOf('/')
  const address = slash === -1 ? value : value.slice(0, slash)
  const version = isIP(address)
  if (version === 0) throw invalidRequest('querystring/ip must be an IP address or a CIDR block such as 203.0.113.0/24')
  const maxBits = version === 4 ? 32 : 128
  if (slash === -1) return `${address}/${maxBits}`
  const bits = value.slice(slash + 1)
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > maxBits) throw invalidRequest(`querystring/ip has a prefix length that is not 0-${maxBits}`)
  return `${address}/${Number(bits)}`
}
