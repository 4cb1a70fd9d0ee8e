/** The HTTP routes: validated input in, one domain call, a plain object out. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ServiceError } from '../errors.ts'
import type { Scheduler } from '../jobs/scheduler.ts'
import type { JobStore } from '../jobs/store.ts'
import { parseSubmittedUrls } from '../urls.ts'
import { clientOf } from './access.ts'
import { createEventStreams, type EventStreamOptions } from './events.ts'
import type { Quotas } from './quotas.ts'
import {
  AcceptedAnswer,
  errorAnswer,
  JobParams,
  JobStatus,
  Links,
  TooManySubmissions,
  uploadBody,
} from './schemas.ts'
import { sendStatus } from './status.ts'

export type RoutesOptions = {
  store: JobStore
  queue: Scheduler
  quotas: Quotas
  maxUrlsPerJob: number
  streams: EventStreamOptions
}

const JOB_NOT_FOUND =
  "`job_not_found`: no job has this id (or it is another API key's job, or retention dropped it)"

export const routes: FastifyPluginAsyncTypebox<RoutesOptions> = async (
  app,
  { store, queue, quotas, maxUrlsPerJob, streams },
) => {
  app.post(
    '/v1/images/upload',
    {
      schema: {
        operationId: 'submitJob',
        summary: 'Submit image URLs to upload to Imgur',
        description:
          'Answers at once with the id of a new job and its status route in `Location`; downloads and uploads happen in the background. ' +
          'Every URL is checked before the job is made: one bad entry refuses the whole submission, and the 400 names each bad entry and why.',
        body: uploadBody(maxUrlsPerJob),
        response: {
          202: AcceptedAnswer,
          400: errorAnswer(
            '`invalid_urls` (`details.invalid` names each bad entry), `invalid_body` (the body does not match the schema) or `invalid_json`',
          ),
          413: errorAnswer('`body_too_large`: the body is larger than 1 MiB'),
          415: errorAnswer('`unsupported_media_type`: the body is not sent as `application/json`'),
          429: TooManySubmissions,
          503: errorAnswer(
            '`queue_full` (too many URLs waiting) or `shutting_down`; `Retry-After` says when to submit again',
          ),
        },
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
      const admission = quotas.admit(clientOf(request), request.owner, parsed.urls.length)
      const { clientId, album, webhookUrl } = request.body
      const job = queue.submit(parsed.urls, parsed.targets, {
        clientId,
        owner: request.owner,
        album,
        webhookUrl,
      })
      reply.headers(admission.commit())
      request.log.info({ jobId: job.id, urls: job.items.length }, 'job accepted')
      return reply.code(202).header('location', `/v1/images/upload/${job.id}`).send({ jobId: job.id })
    },
  )

  app.get(
    '/v1/images/upload/:jobId',
    {
      schema: {
        operationId: 'getJobStatus',
        summary: 'The status of a job',
        description:
          'What is pending, uploaded and failed: the Imgur link of every URL uploaded, the reason of every URL that failed, and the album and webhook if the job asked for them. ' +
          'A job is kept until retention drops it (`JOB_RETENTION_*`); after that its id answers 404.',
        params: JobParams,
        response: { 200: JobStatus, 404: errorAnswer(JOB_NOT_FOUND) },
      },
    },
    // The cached JSON of the job's current version, shared with its streams (see status.ts).
    async (request, reply) => sendStatus(reply, findJob(store, request.params.jobId, request.owner)),
  )

  const events = createEventStreams(store, streams)
  app.addHook('preClose', async () => events.close())
  app.get(
    '/v1/images/upload/:jobId/events',
    {
      schema: {
        operationId: 'streamJobStatus',
        summary: 'Live status of a job (Server-Sent Events)',
        description:
          'Sends a `status` event carrying the same document as the status route at once and on every change, and ends after `complete`. ' +
          'A client that stops reading gets only the newest status once it reads again; one that reads nothing for `STREAM_IDLE_TIMEOUT_MS` is disconnected. ' +
          'Streams open at once are capped in all (`MAX_STREAMS`) and per client (`MAX_STREAMS_PER_CLIENT`): past a cap, 429 with Retry-After.',
        params: JobParams,
        produces: ['text/event-stream'],
        response: {
          200: {
            description: 'a stream of `event: status` messages',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
          404: errorAnswer(JOB_NOT_FOUND),
          429: errorAnswer('`too_many_streams`: too many streams open (in all, or for this client)'),
        },
      },
    },
    async (request, reply) =>
      events.stream(findJob(store, request.params.jobId, request.owner), request, reply),
  )

  app.get(
    '/v1/images',
    {
      schema: {
        operationId: 'listLinks',
        summary: 'Every Imgur link uploaded since the service started (with API keys: by your jobs)',
        description:
          "The Imgur link of every item uploaded, across jobs, each once and in upload order; retention drops jobs but never their links. With API keys on, only the links of the caller's jobs.",
        response: { 200: Links },
      },
    },
    // The store's lists are only ever appended to; serialising one needs no copy.
    async (request) => ({ uploaded: store.links(request.owner) as string[] }),
  )
}

/** The job, if `owner` may see it: another key's job answers exactly as an unknown id, so ids cannot be probed. */
export function findJob(store: JobStore, id: string, owner: string | undefined) {
  const job = store.get(id)
  if (job === undefined || job.owner !== owner)
    throw new ServiceError('job_not_found', `no job with id ${id.slice(0, 64)}`, { statusCode: 404 })
  return job
}
