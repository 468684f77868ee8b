// Session change notifications: NOTIFY from a trigger on sessions (sql/007), and a per-node LISTEN connection that reconnects with backoff.
import postgres from 'postgres'

export const CHANGES_CHANNEL = 'session_changes'
const LISTENER_APPLICATION_NAME = 'session-service-listener'
const MAX_BACKOFF_MS = 5000

// Nothing in the service sends on CHANGES_CHANNEL by hand: the sessions_changed trigger (sql/007) does, for every change
// of what validate returns (touches aside), and Postgres delivers it only if, and when, the changing transaction commits.

export interface ChangeFeedHandlers {
  onChange(sessionId: string): void
  // Called on every (re)connection once LISTEN is in place: notifications missed before it are unknown.
  onListening(): void
  // Called when the listening connection is lost: until onListening, changes may go unseen.
  onLost(err?: unknown): void
}

export interface ChangeFeed {
  close(): Promise<void>
}

export function startChangeFeed(url: string, connectTimeout: number, handlers: ChangeFeedHandlers): ChangeFeed {
  let closing = false
  let attempt = 0
  let retry: NodeJS.Timeout | undefined

  const schedule = () => {
    if (closing || retry !== undefined) return
    retry = setTimeout(() => {
      retry = undefined
      void listen()
    }, Math.min(MAX_BACKOFF_MS, 100 * 2 ** attempt++))
  }

  // onnotify and onclose are postgres.js connection options its own listen() uses; onnotify is missing from its types.
  const listener = postgres(url, {
    max: 1,
    idle_timeout: null,
    max_lifetime: null,
    fetch_types: false,
    connect_timeout: connectTimeout,
    onnotice: () => {},
    connection: { application_name: LISTENER_APPLICATION_NAME },
    onnotify: (channel: string, payload: string) => {
      if (channel === CHANGES_CHANNEL) handlers.onChange(payload)
    },
    onclose: () => {
      if (closing) return
      handlers.onLost()
      schedule()
    },
  } as unknown as postgres.Options<Record<string, never>>)

  async function listen(): Promise<void> {
    try {
      await listener`listen ${listener(CHANGES_CHANNEL)}`
      attempt = 0
      handlers.onListening()
    } catch (err) {
      if (closing) return
      handlers.onLost(err)
      schedule()
    }
  }

  void listen()
  return {
    async close() {
      closing = true
      clearTimeout(retry)
      await listener.end({ timeout: 2 })
    },
  }
}
