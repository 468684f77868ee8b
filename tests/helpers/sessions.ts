// Shorthands for the session routes, returning the raw inject response.
import type { FastifyInstance } from 'fastify'
import { call } from './app.js'

export async function createSession(app: FastifyInstance, body: Record<string, unknown> = { userId: '42' }) {
  const res = await call(app, { method: 'POST', url: '/v1/sessions', payload: body })
  if (res.statusCode !== 201) throw new Error(`create failed: ${res.statusCode} ${res.body}`)
  const json = res.json() as { token: string; session: { id: string; version: number; [key: string]: unknown }; setCookie: string }
  return json
}

export const validate = (app: FastifyInstance, token: unknown, extra: Record<string, unknown> = {}) =>
  call(app, { method: 'POST', url: '/v1/sessions/validate', payload: { token, ...extra } })

export const touch = (app: FastifyInstance, token: unknown) =>
  call(app, { method: 'POST', url: '/v1/sessions/touch', payload: { token } })

export const rotate = (app: FastifyInstance, token: unknown) =>
  call(app, { method: 'POST', url: '/v1/sessions/rotate', payload: { token } })

export const revoke = (app: FastifyInstance, token: unknown, reason?: string) =>
  call(app, { method: 'POST', url: '/v1/sessions/revoke', payload: reason === undefined ? { token } : { token, reason } })
