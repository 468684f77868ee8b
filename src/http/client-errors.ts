// Answers for requests Node's HTTP parser rejects before Fastify sees them (bad framing, oversized headers, timeouts), in the contract's shape.
import type { Socket } from 'node:net'

const ANSWERS: Record<string, { status: number; reason: string; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', code: 'invalid_request', message: 'request headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', code: 'invalid_request', message: 'the request took too long to arrive' },
}
const MALFORMED = { status: 400, reason: 'Bad Request', code: 'invalid_request', message: 'the HTTP request is malformed' }

export type ClientErrorAnswer = typeof MALFORMED

// onAnswer sees each answer given, with the parser's error code as its cause, to count and log it like any other request.
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket, onAnswer?: (answer: ClientErrorAnswer, cause: string | undefined) => void): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return
  const answer = ANSWERS[err.code ?? ''] ?? MALFORMED
  onAnswer?.(answer, err.code)
  const body = JSON.stringify({ error: { code: answer.code, message: answer.message, details: [] } })
  socket.end([
    `HTTP/1.1 ${answer.status} ${answer.reason}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n'))
}
