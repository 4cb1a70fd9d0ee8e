/**
 * The status document serialised once per change of a job, and shared by the status route and
 * every stream of that job: a thousand readers of a 2 MB document cost one JSON.stringify and
 * one buffer, not a thousand. A Buffer rather than a string, because sockets send a Buffer's
 * bytes where they are, while each write of a string makes a copy of its own (so ten streams
 * that cannot send yet would hold ten copies of the document).
 */
import type { FastifyReply } from 'fastify'
import { type Job, viewJob } from '../jobs/model.ts'

/** Keyed on the job itself, so an entry goes when the store forgets its job. */
const cache = new WeakMap<Job, { version: number; json: Buffer }>()
let serialised = 0

/** The status document of `job` as UTF-8 JSON: the bytes of JSON.stringify(viewJob(job)). */
export function statusJson(job: Job): Buffer {
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
export function sendStatus(reply: FastifyReply, job: Job): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(statusJson(job))
}
