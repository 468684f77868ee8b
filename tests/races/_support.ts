// The real app on a fresh database, listening on a loopback port, so races run over real HTTP connections.
import type { Test } from 'tap'
import { APP_KEY, setup, type TestApp } from '../helpers/app.js'

export interface Listening extends TestApp {
  base: string
  // fetch with the app's API key; JSON in and out.
  send(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; json: any }>
}

export async function listening(t: Test, env: Record<string, string> = {}): Promise<Listening> {
  const testApp = await setup(t, env)
  const address = await testApp.app.listen({ host: '127.0.0.1', port: 0 })
  const send = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${address}${path}`, {
      method,
      headers: { authorization: `Bearer ${APP_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    })
    const text = await res.text()
    return { status: res.status, json: text === '' ? null : JSON.parse(text) }
  }
  return { ...testApp, base: address, send }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
