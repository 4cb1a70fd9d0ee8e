/**
 * One bounded request to Imgur: a total deadline, the caller's cancellation, a capped response
 * body, and every failure turned into a ServiceError (network, timeout, cancelled).
 */
import type { Agent, Dispatcher } from 'undici'
import { isServiceError } from '../errors.ts'
import { startDeadline } from '../signals.ts'
import { cancelledError, networkError, timeoutError } from './errors.ts'
import type { Headers } from './rate-limits.ts'

export type ImgurResponse = { status: number; headers: Headers; body: string }
type SendInit = {
  headers: Record<string, string>
  body: NonNullable<Dispatcher.RequestOptions['body']>
  signal: AbortSignal
}

/** Imgur's answers are small JSON or HTML; a runaway body is cut rather than buffered. */
const MAX_RESPONSE_BYTES = 1 << 20

/** Connections to Imgur, made with the first request. */
export type Connections = { get: () => Promise<Dispatcher>; close: () => Promise<void> }

/**
 * undici is loaded with the first request, not at start: the main thread calls Imgur only to make
 * albums, and a service that makes none saves the ~3 MB undici costs at idle (README, Performance).
 */
export function connections(options: Agent.Options): Connections {
  let agent: Promise<Agent> | undefined
  return {
    get: () => (agent ??= import('undici').then(({ Agent }) => new Agent(options))),
    close: async () => {
      await (await agent)?.close()
    },
  }
}

export async function post(connections: Connections, url: string, init: SendInit): Promise<ImgurResponse> {
  const { origin, pathname, search } = new URL(url)
  const dispatcher = await connections.get()
  const response = await dispatcher.request({ origin, path: `${pathname}${search}`, method: 'POST', ...init })
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_RESPONSE_BYTES) break
    chunks.push(chunk)
  }
  return {
    status: response.statusCode,
    headers: response.headers,
    body: Buffer.concat(chunks).toString('utf8'),
  }
}

/**
 * Runs `work` with a signal that fires on the caller's abort or after `timeoutMs`, and names the
 * failure by which one fired: the caller's abort wins (`cancelled`), then the deadline.
 */
export async function withDeadline<T>(
  timeoutMs: number,
  callerSignal: AbortSignal | undefined,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (callerSignal?.aborted) throw cancelledError(callerSignal.reason)
  const deadline = startDeadline(timeoutMs, callerSignal)
  try {
    return await work(deadline.signal)
  } catch (error) {
    if (callerSignal?.aborted) throw cancelledError(error)
    if (deadline.timedOut) throw timeoutError(timeoutMs, error)
    if (isServiceError(error)) throw error
    throw networkError(error)
  } finally {
    deadline.clear()
  }
}
