/** The HTTP routes: validated input in, one domain call, a plain object out. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ServiceError } from '../errors.ts'
import { viewJob } from '../jobs/model.ts'
import type { Scheduler } from '../jobs/scheduler.ts'
import type { JobStore } from '../jobs/store.ts'
import { parseSubmittedUrls } from '../urls.ts'
import { createEventStreams } from './events.ts'
import { Accepted, ErrorBody, JobParams, JobStatus, Links, uploadBody } from './schemas.ts'

export type RoutesOptions = { store: JobStore; queue: Scheduler; maxUrlsPerJob: number }

export const routes: FastifyPluginAsyncTypebox<RoutesOptions> = async (
  app,
  { store, queue, maxUrlsPerJob },
) => {
  app.post(
    '/v1/images/upload',
    {
      schema: {
        summary: 'Submit image URLs to upload to Imgur',
        description: 'Answers at once with a job id; downloads and uploads happen in the background.',
        body: uploadBody(maxUrlsPerJob),
        response: { 202: Accepted, 400: ErrorBody, 413: ErrorBody, 415: ErrorBody, 503: ErrorBody },
      },
      preValidation: async (request) => {
        if (request.headers['content-type']?.split(';')[0]?.trim().toLowerCase() !== 'application/json') {
          throw new ServiceError(
            'unsupported_media_type',
            'send the body as Content-Type: application/json',
            {
              statusCode: 415,
            },
          )
        }
      },
    },
    async (request, reply) => {
      const parsed = parseSubmittedUrls(request.body.urls)
      if (!parsed.ok) {
        const count = parsed.problems.length
        throw new ServiceError(
          'invalid_urls',
          `${count} of the submitted URLs ${count === 1 ? 'is' : 'are'} invalid`,
          {
            statusCode: 400,
            details: { invalid: parsed.problems },
          },
        )
      }
      const job = queue.submit(parsed.urls, parsed.targets, { clientId: request.body.clientId })
      request.log.info({ jobId: job.id, urls: job.items.length }, 'job accepted')
      return reply.code(202).header('location', `/v1/images/upload/${job.id}`).send({ jobId: job.id })
    },
  )

  app.get(
    '/v1/images/upload/:jobId',
    {
      schema: {
        summary: 'The status of a job',
        params: JobParams,
        response: { 200: JobStatus, 404: ErrorBody },
      },
    },
    async (request) => viewJob(findJob(store, request.params.jobId)),
  )

  const events = createEventStreams(store)
  app.addHook('preClose', async () => events.close())
  app.get(
    '/v1/images/upload/:jobId/events',
    {
      schema: {
        summary: 'Live status of a job (Server-Sent Events)',
        description:
          'Sends an `status` event carrying the same document as the status route at once and on every change, and ends after `complete`.',
        params: JobParams,
        produces: ['text/event-stream'],
        response: {
          200: {
            description: 'a stream of `event: status` messages',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
          404: ErrorBody,
        },
      },
    },
    async (request, reply) => events.stream(findJob(store, request.params.jobId), request, reply),
  )

  app.get(
    '/v1/images',
    { schema: { summary: 'Every Imgur link uploaded since the service started', response: { 200: Links } } },
    // The store's list is only ever appended to; serialising it needs no copy.
    async () => ({ uploaded: store.links() as string[] }),
  )
}

export function findJob(store: JobStore, id: string) {
  const job = store.get(id)
  if (job === undefined)
    throw new ServiceError('job_not_found', `no job with id ${id.slice(0, 64)}`, { statusCode: 404 })
  return job
}
