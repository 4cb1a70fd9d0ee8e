/**
 * Live job status as Server-Sent Events: the status document at once, then on every change
 * (coalesced, so a 1,000-URL job is not serialised 1,000 times a second), ending after `complete`.
 *
 * Safe for clients that never read. Once the socket refuses a write (its buffer is full), nothing
 * more is queued for that client: the stream only remembers which version it sent, and sends the
 * newest status when the socket drains. A stream whose bytes have waited unread for
 * `idleTimeoutMs` is destroyed. So a stream holds at most one status document (shared, see
 * status.ts) plus the socket's own buffers, and nothing is written after end() or close: every
 * write checks `ended`, and the ping, timers and subscription are cleared as soon as it ends.
 *
 * Hand-written rather than @fastify/sse (0.6): that plugin awaits 'drain' per message but neither
 * coalesces nor skips statuses, its heartbeat writes into a full socket, and it has no idle
 * timeout or caps, so all of this would be needed around it anyway.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ServiceError } from '../errors.ts'
import type { JobStore, JobView } from '../jobs/contract.ts'
import { statusJson } from './status.ts'

const COALESCE_MS = 100
const STATUS_EVENT = 'event: status\ndata: '
const EVENT_END = '\n\n'
const PING_MS = 15_000
/** Streams last minutes: a refused client is told to wait a little, or to poll the status route. */
const RETRY_AFTER_MS = 5_000

export type EventStreamOptions = {
  /** A stream whose socket has stayed undrained (its client read nothing) this long is closed. */
  idleTimeoutMs: number
  /** Streams open at once, in all. */
  maxStreams: number
  /** Streams open at once per client (the app counts them as its limits do: `limitedAs`). */
  maxStreamsPerClient: number
  /** The client a request counts against; default: its IP address (`request.ip`). */
  clientOf?: (request: FastifyRequest) => string
}

export function createEventStreams(store: JobStore, options: EventStreamOptions) {
  for (const key of ['idleTimeoutMs', 'maxStreams', 'maxStreamsPerClient'] as const) {
    if (!Number.isSafeInteger(options[key]) || options[key] < 1) {
      throw new TypeError(`Expected \`${key}\` to be an integer >= 1, got \`${options[key]}\``)
    }
  }
  const { idleTimeoutMs, maxStreams, maxStreamsPerClient } = options
  const clientOf = options.clientOf ?? ((request: FastifyRequest) => request.ip)
  /** Each open stream, with what stops it at shutdown. */
  const open = new Map<ServerResponse, () => void>()
  const perClient = new Map<string, number>()

  function tooMany(what: string): ServiceError {
    return new ServiceError(
      'too_many_streams',
      `${what}; close one, or poll GET /v1/images/upload/{jobId} instead`,
      { retryAfterMs: RETRY_AFTER_MS },
    )
  }

  /** Takes a slot for `client`, or throws the 429 (before anything is written). */
  function admit(client: string): void {
    const mine = perClient.get(client) ?? 0
    if (mine >= maxStreamsPerClient) {
      throw tooMany(`this client has ${mine} status streams open, the most allowed`)
    }
    if (open.size >= maxStreams) {
      throw tooMany(`the service has ${open.size} status streams open, the most it allows`)
    }
    perClient.set(client, mine + 1)
  }

  function release(client: string): void {
    const left = (perClient.get(client) ?? 1) - 1
    if (left > 0) perClient.set(client, left)
    else perClient.delete(client)
  }

  function stream(initial: JobView, request: FastifyRequest, reply: FastifyReply): void {
    /** The newest view of the job: the store hands one with each change. */
    let job = initial
    const client = clientOf(request)
    admit(client)
    reply.hijack()
    const res = reply.raw
    // Not closed by the connection's inactivity bound (REQUEST_TIMEOUT_MS): a stream is silent
    // between changes but for a ping every 15 s, and its idle timer closes one whose client reads
    // nothing. While the response has a 'timeout' listener, Node leaves the socket to it
    // (https://nodejs.org/api/http.html#responsesettimeoutmsecs-callback); the connection's next
    // request has the bound again.
    res.on('timeout', () => {})
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': request.id,
    })
    /** end() was called or the response closed: nothing is ever written again. */
    let ended = false
    /** The socket refused the last write: nothing is written until it drains. */
    let refused = false
    let sentVersion = -1
    let coalescing: NodeJS.Timeout | undefined
    /** Runs while bytes wait in the socket's buffer: the client has read none of them for that long. */
    let idle: NodeJS.Timeout | undefined

    const flushed = (): void => {
      if (res.writableLength > 0) return
      clearTimeout(idle)
      idle = undefined
    }
    /** Writes an event; its pieces leave in one socket write (Node corks the socket until the next tick). */
    const write = (...chunks: Array<string | Buffer>): void => {
      if (ended) return
      let written = true
      for (const [index, chunk] of chunks.entries()) {
        written = res.write(chunk, index === chunks.length - 1 ? flushed : undefined)
      }
      if (!written) refused = true
      if (idle !== undefined) return
      idle = setTimeout(() => {
        request.log.info({ jobId: job.id, idleTimeoutMs }, 'status stream closed: its client read nothing')
        res.destroy()
      }, idleTimeoutMs)
      idle.unref()
    }
    const send = (): void => {
      clearTimeout(coalescing)
      coalescing = undefined
      if (ended || refused) return
      if (job.version !== sentVersion) {
        sentVersion = job.version
        write(STATUS_EVENT, statusJson(job), EVENT_END)
      }
      if (job.pending === 0) end()
    }
    const changed = (): void => {
      if (ended || refused) return
      if (job.pending === 0) send()
      else coalescing ??= setTimeout(send, COALESCE_MS)
    }
    const newer = (latest: JobView | undefined): void => {
      if (latest === undefined || latest.version < job.version) return
      job = latest
      changed()
    }
    const unsubscribe = store.subscribe(job.id, newer)
    // A change made elsewhere between the first read and the subscription is not missed.
    store.get(job.id).then(newer, () => {})
    const ping = setInterval(() => {
      if (!refused) write(': ping\n\n')
    }, PING_MS)
    ping.unref()
    /** Stops everything that could write; the idle timer stays until the last bytes are taken. */
    const stop = (): void => {
      ended = true
      unsubscribe()
      clearTimeout(coalescing)
      clearInterval(ping)
    }
    const end = (): void => {
      stop()
      res.end()
    }
    const closed = (): void => {
      stop()
      clearTimeout(idle)
      if (open.delete(res)) release(client)
    }

    // At shutdown a stream whose client is behind is dropped rather than waited for.
    open.set(res, () => {
      if (refused || res.writableLength > 0) res.destroy()
      else if (!ended) end()
    })
    res.on('drain', () => {
      refused = false
      if (job.version !== sentVersion) changed()
    })
    // Nothing writes after end, so an error here is the socket's; closing it runs the cleanup.
    res.on('error', () => res.destroy())
    res.on('close', closed)
    // A response whose 'close' was emitted before these listeners would never give its slot back.
    if (res.closed) closed()
    else send()
  }

  /** Ends every open stream (destroys those whose client is behind), so closing the server does not wait on them. */
  function close(): void {
    for (const stop of open.values()) stop()
  }

  return { stream, close }
}
