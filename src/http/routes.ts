/** The HTTP routes: validated input in, one domain call, a plain object out. */
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ServiceError } from '../errors.ts'
import type { JobQueue, JobStore, JobView } from '../jobs/contract.ts'
import { parseSubmittedUrls } from '../urls.ts'
import { checkWebhookUrl } from '../webhooks/submission.ts'
import { clientOf, limitedAs } from './access.ts'
import { createEventStreams, type EventStreamOptions } from './events.ts'
import { type IdempotencyStore, idempotent } from './idempotency.ts'
import { Pager } from './pages.ts'
import type { Quotas } from './quotas.ts'
import {
  AcceptedAnswer,
  errorAnswer,
  JobParams,
  JobStatus,
  LinksAnswer,
  LinksQuery,
  SubmitHeaders,
  TooManySubmissions,
  uploadBody,
} from './schemas.ts'
import { sendStatus } from './status.ts'

export type RoutesOptions = {
  store: JobStore
  queue: JobQueue
  quotas: Quotas
  idempotency: IdempotencyStore
  maxUrlsPerJob: number
  streams: EventStreamOptions
  /** WEBHOOK_SECRET is set: submissions may carry a webhookUrl. */
  webhooks: boolean
}

const JOB_NOT_FOUND =
  "`job_not_found`: no job has this id (or it is another API key's job, or retention dropped it)"

export const routes: FastifyPluginAsyncTypebox<RoutesOptions> = async (
  app,
  { store, queue, quotas, idempotency, maxUrlsPerJob, streams, webhooks },
) => {
  app.post(
    '/v1/images/upload',
    {
      schema: {
        operationId: 'submitJob',
        summary: 'Submit image URLs to upload to Imgur',
        description:
          'Answers at once with the id of a new job and its status route in `Location`; downloads and uploads happen in the background. ' +
          'Every URL is checked before the job is made: one bad entry refuses the whole submission, and the 400 names each bad entry and why. ' +
          'With an `Idempotency-Key`, a retry of the same submission answers the first answer again instead of making a second job.',
        headers: SubmitHeaders,
        body: uploadBody(maxUrlsPerJob),
        response: {
          202: AcceptedAnswer,
          400: errorAnswer(
            '`invalid_urls` (`details.invalid` names each bad entry), `invalid_body` (the body does not match the schema), `invalid_json`, `invalid_idempotency_key`, `webhooks_disabled` or `invalid_webhook_url`',
          ),
          409: errorAnswer(
            '`idempotency_request_in_progress`: the first request with this Idempotency-Key is still being answered (Retry-After)',
          ),
          413: errorAnswer('`body_too_large`: the body is larger than 1 MiB'),
          415: errorAnswer('`unsupported_media_type`: the body is not sent as `application/json`'),
          422: errorAnswer('`idempotency_key_reused`: this Idempotency-Key came earlier with another body'),
          429: TooManySubmissions,
          503: errorAnswer(
            '`queue_full` (too many URLs waiting) or `shutting_down`; `Retry-After` says when to submit again',
          ),
        },
      },
      ...idempotent(idempotency, clientOf),
      preValidation: async (request) => {
        if (request.headers['content-type']?.split(';')[0]?.trim().toLowerCase() !== 'application/json') {
          throw new ServiceError('unsupported_media_type', 'send the body as Content-Type: application/json')
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
            details: { invalid: parsed.problems },
          },
        )
      }
      const { clientId, album, webhookUrl } = request.body
      checkWebhookUrl(webhookUrl, webhooks)
      const admission = quotas.admit(limitedAs(request), request.owner, parsed.urls.length)
      const job = await queue
        .submit(parsed.urls, parsed.targets, { clientId, owner: request.owner, album, webhookUrl })
        .catch((error: unknown) => {
          admission.cancel()
          throw error
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
    async (request, reply) => sendStatus(reply, await findJob(store, request.params.jobId, request.owner)),
  )

  // The cancel route needs no body; a client that says `Content-Type: application/json` and sends
  // none is not refused for it (Fastify's JSON parser refuses an empty body).
  app.register(async (scope) => {
    const json = scope.getDefaultJsonParser('error', 'error')
    scope.removeContentTypeParser('application/json')
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
      body === '' ? done(null, undefined) : json(request, body as string, done),
    )
    scope.withTypeProvider<TypeBoxTypeProvider>().post(
      '/v1/images/upload/:jobId/cancel',
      {
        schema: {
          operationId: 'cancelJob',
          summary: 'Cancel a job',
          description:
            'Its URLs not finished — waiting, waiting for a retry, or being downloaded or uploaded (those are aborted) — fail at once with reason `cancelled`; ' +
            'those complete stay complete, and an album the job asked for is made of them. Answers the status document; cancelling a job with nothing left to do changes nothing. ' +
            'The route takes no body.',
          params: JobParams,
          response: {
            200: JobStatus,
            400: errorAnswer('`invalid_json`: a body was sent and it is not JSON'),
            404: errorAnswer("`job_not_found`: no such job (or another API key's)"),
            413: errorAnswer('`body_too_large`: a body was sent, larger than 1 MiB'),
            415: errorAnswer('`unsupported_media_type`: a body was sent, and not as JSON'),
          },
        },
      },
      async (request, reply) => {
        const job = await findJob(store, request.params.jobId, request.owner)
        if (job.pending === 0) return sendStatus(reply, job)
        await queue.cancel(job.id)
        // The document after the cancel (the memory store's view is live; a fleet's is read again).
        return sendStatus(reply, (await store.get(job.id)) ?? job)
      },
    )
  })

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
      events.stream(await findJob(store, request.params.jobId, request.owner), request, reply),
  )

  // The store names its list of links, so a cursor works at every replica of a fleet.
  const pager = new Pager(() => store.epoch)
  app.get(
    '/v1/images',
    {
      schema: {
        operationId: 'listLinks',
        summary: 'Every Imgur link uploaded since the service started (with API keys: by your jobs)',
        description:
          "The Imgur link of every item uploaded, across jobs, each once and in upload order; retention drops jobs but never their links. With API keys on, only the links of the caller's jobs. " +
          'Without parameters, the whole list. With `limit` (and then `cursor`), one page of it and the `next` cursor, also sent as `Link: <…>; rel="next"`; ' +
          'the list is only ever appended to, so pages neither skip nor repeat links.',
        querystring: LinksQuery,
        response: {
          200: LinksAnswer,
          400: errorAnswer('`invalid_limit` (not 1 to 1000) or `invalid_cursor`'),
        },
      },
    },
    async (request, reply) => {
      // The store's lists are only ever appended to; serialising one whole needs no copy.
      const links = (await store.links(request.owner)) as string[]
      const { limit, cursor } = request.query
      if (limit === undefined && cursor === undefined) return { uploaded: links }
      const page = pager.page(links, limit, cursor)
      if (page.next !== null)
        reply.header('link', `</v1/images?limit=${page.limit}&cursor=${page.next}>; rel="next"`)
      return { uploaded: page.entries, next: page.next }
    },
  )
}

/** The job, if `owner` may see it: another key's job answers exactly as an unknown id, so ids cannot be probed. */
export async function findJob(store: JobStore, id: string, owner: string | undefined): Promise<JobView> {
  const job = await store.get(id)
  if (job === undefined || job.owner !== owner)
    throw new ServiceError('job_not_found', `no job with id ${id.slice(0, 64)}`)
  return job
}
