/**
 * The status document serialised once per change of a job, and shared by the status route and
 * every stream of that job: a thousand readers of a 2 MB document cost one JSON.stringify and
 * one buffer, not a thousand. A Buffer rather than a string, because sockets send a Buffer's
 * bytes where they are, while each write of a string makes a copy of its own (so ten streams
 * that cannot send yet would hold ten copies of the document).
 */
import type { FastifyReply } from 'fastify'
import type { JobView } from '../jobs/contract.ts'
import { type Album, jobStatus, type Reason, type Webhook } from '../jobs/model.ts'
import type { StatusDocument } from './schemas.ts'

/**
 * Keyed on the view itself, so an entry goes when the store forgets its job. The memory store's
 * views are its live jobs; a fleet's store hands each change's snapshot to all of a job's streams.
 */
const cache = new WeakMap<JobView, { version: number; json: Buffer }>()
let serialised = 0

/** The status document of `job` as UTF-8 JSON: the bytes of JSON.stringify(viewJob(job)). */
export function statusJson(job: JobView): Buffer {
  const cached = cache.get(job)
  if (cached?.version === job.version) return cached.json
  const json = Buffer.from(JSON.stringify(viewJob(job)))
  serialised += 1
  cache.set(job, { version: job.version, json })
  return json
}

/** Documents serialised since the process started (tests check the cache with it). */
export function statusSerialisations(): number {
  return serialised
}

/**
 * Sends the cached document. Fastify sends a Buffer as is: its serialiser (built from the
 * route's response schema, which stays for the OpenAPI document) never sees it.
 */
export function sendStatus(reply: FastifyReply, job: JobView): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(statusJson(job))
}

/** The status document of the API: the three lists, plus `items` with each URL's link or reason. */
export function viewJob(job: JobView): StatusDocument {
  const pending: string[] = []
  const complete: string[] = []
  const failed: string[] = []
  const items = job.items.map((item) => {
    const view: StatusDocument['items'][number] = {
      url: item.url,
      state: item.state,
      attempts: item.attempts,
    }
    if (item.state === 'pending') pending.push(item.url)
    else if (item.state === 'complete') {
      complete.push(item.link as string)
      view.link = item.link as string
      // A reused link's deletehash is its first uploader's: kept for albums, never shown.
      if (item.reused) view.reused = true
      else if (item.deletehash) view.deletehash = item.deletehash
      if (item.converted) view.converted = item.converted
      if (item.reencoded) view.reencoded = item.reencoded
    } else {
      failed.push(item.url)
      view.reason = item.reason as Reason
    }
    return view
  })
  return {
    id: job.id,
    created: new Date(job.created).toISOString(),
    finished: job.finished === undefined ? null : new Date(job.finished).toISOString(),
    status: jobStatus(job),
    uploaded: { pending, complete, failed },
    items,
    ...(job.album && { album: albumView(job.album) }),
    ...(job.webhook && { webhook: webhookView(job.webhook) }),
  }
}

function albumView({ state, link, id, deletehash, reason }: Album): NonNullable<StatusDocument['album']> {
  return {
    state,
    ...(link && { link }),
    ...(id && { id }),
    ...(deletehash && { deletehash }),
    ...(reason && { reason }),
  }
}

/** Never the URL: it may carry a receiver's secret in its query string. */
function webhookView({ state, attempts, lastError }: Webhook): NonNullable<StatusDocument['webhook']> {
  return { state, attempts, ...(lastError && { lastError }) }
}
