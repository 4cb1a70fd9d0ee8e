/**
 * Live job status as Server-Sent Events: the status document at once, then on every change
 * (coalesced, so a 1,000-URL job is not serialised 1,000 times a second), ending after `complete`.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { type Job, viewJob } from '../jobs/model.ts'
import type { JobStore } from '../jobs/store.ts'

const COALESCE_MS = 100
const PING_MS = 15_000

export function createEventStreams(store: JobStore) {
  const open = new Set<ServerResponse>()

  function stream(job: Job, request: FastifyRequest, reply: FastifyReply): void {
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': request.id,
    })
    open.add(res)
    let timer: NodeJS.Timeout | undefined
    const send = (): void => {
      timer = undefined
      const view = viewJob(job)
      res.write(`event: status\ndata: ${JSON.stringify(view)}\n\n`)
      if (view.status === 'complete') res.end()
    }
    const unsubscribe = store.subscribe(job.id, () => {
      if (job.pending === 0) {
        clearTimeout(timer)
        send()
      } else timer ??= setTimeout(send, COALESCE_MS)
    })
    const ping = setInterval(() => res.write(': ping\n\n'), PING_MS)
    ping.unref()
    res.on('close', () => {
      open.delete(res)
      unsubscribe()
      clearTimeout(timer)
      clearInterval(ping)
    })
    send()
  }

  /** Ends every open stream, so that closing the server does not wait on them. */
  function close(): void {
    for (const res of open) res.end()
  }

  return { stream, close }
}
