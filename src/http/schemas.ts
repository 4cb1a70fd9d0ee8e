/** TypeBox schemas: one source for validation, TypeScript types, serialisation and OpenAPI. */
import { type Static, Type } from 'typebox'
import { MAX_URL_LENGTH } from '../urls.ts'

export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'stable machine-readable code', examples: ['invalid_urls'] }),
    message: Type.String({ description: 'what happened, for people' }),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { description: 'Every error answer has this shape.' },
)

/** An error answer in a route's schema; the description names the `error` codes it may carry. */
export const errorAnswer = (description: string) => ({ ...ErrorBody, description })

export function uploadBody(maxUrls: number) {
  return Type.Object(
    {
      urls: Type.Array(
        // Entries are checked one by one in code, so that a 400 names every bad entry and why.
        Type.Unknown({ description: `absolute http: or https: URL, at most ${MAX_URL_LENGTH} characters` }),
        { minItems: 1, maxItems: maxUrls, description: 'image URLs; duplicates are removed' },
      ),
      clientId: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 64,
          pattern: '^[\\x21-\\x7E]+$',
          description: "an Imgur client id to upload this job's images with (never echoed or logged)",
        }),
      ),
      webhookUrl: Type.Optional(
        // Checked in code (like `urls`), so that a bad one answers `invalid_webhook_url`.
        Type.String({
          description:
            'an http(s) URL without credentials, at most 2048 characters, that receives a signed `job.completed` call (Standard Webhooks) when the job completes; needs WEBHOOK_SECRET on the service',
        }),
      ),
      album: Type.Optional(
        Type.Object(
          {
            title: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
            description: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
          },
          {
            additionalProperties: false,
            description:
              "make an Imgur album of the job's images, in submission order, once every URL has settled",
          },
        ),
      ),
    },
    {
      additionalProperties: false,
      examples: [{ urls: ['https://example.com/cat.png', 'https://example.com/dog.jpg'] }],
    },
  )
}
export type UploadBody = Static<ReturnType<typeof uploadBody>>

export const Accepted = Type.Object({ jobId: Type.String({ format: 'uuid' }) })

export const JobParams = Type.Object({ jobId: Type.String({ description: 'the id returned on submission' }) })

const Reason = Type.Object({
  code: Type.String({ examples: ['download_http_status'] }),
  message: Type.String({ examples: ['origin answered HTTP 404'] }),
})

export const JobStatus = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    created: Type.String({ format: 'date-time', examples: ['2026-11-27T10:00:00.000Z'] }),
    finished: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    status: Type.Union([Type.Literal('pending'), Type.Literal('in-progress'), Type.Literal('complete')]),
    uploaded: Type.Object({
      pending: Type.Array(Type.String(), { description: 'source URLs not finished yet' }),
      complete: Type.Array(Type.String(), { description: 'Imgur links' }),
      failed: Type.Array(Type.String(), { description: 'source URLs that failed' }),
    }),
    items: Type.Array(
      Type.Object({
        url: Type.String({ description: 'the source URL as submitted' }),
        state: Type.Union([Type.Literal('pending'), Type.Literal('complete'), Type.Literal('failed')]),
        attempts: Type.Integer({ minimum: 0 }),
        link: Type.Optional(Type.String({ description: 'the Imgur link it became' })),
        reused: Type.Optional(
          Type.Boolean({ description: 'the same bytes were uploaded before; their link was reused' }),
        ),
        deletehash: Type.Optional(
          Type.String({ description: "Imgur's handle to delete this upload (DELETE /3/image/{deletehash})" }),
        ),
        converted: Type.Optional(
          Type.Object(
            {
              from: Type.String({ examples: ['image/webp'] }),
              to: Type.String({ examples: ['image/png'] }),
            },
            { description: "the image was converted from a format Imgur's API refuses (MIME types)" },
          ),
        ),
        reencoded: Type.Optional(
          Type.Object(
            {
              fromBytes: Type.Integer({ minimum: 0, examples: [14_680_064] }),
              toBytes: Type.Integer({ minimum: 0, examples: [9_437_184] }),
            },
            { description: "the image was re-encoded (quality, then size) to fit Imgur's byte limit" },
          ),
        ),
        reason: Type.Optional(Reason),
      }),
      { description: 'every URL in submission order, with its link or the reason it failed' },
    ),
    album: Type.Optional(
      Type.Object(
        {
          state: Type.Union([Type.Literal('pending'), Type.Literal('complete'), Type.Literal('failed')]),
          link: Type.Optional(Type.String({ description: "the album's Imgur page" })),
          id: Type.Optional(Type.String()),
          deletehash: Type.Optional(
            Type.String({ description: "Imgur's handle to change or delete an anonymous album" }),
          ),
          reason: Type.Optional(Reason),
        },
        {
          description:
            'present when the job asked for an album: made once every item has settled; the job stays in-progress until then',
        },
      ),
    ),
    webhook: Type.Optional(
      Type.Object(
        {
          state: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
          attempts: Type.Integer({ minimum: 0 }),
          lastError: Type.Optional(Type.String({ description: 'why the last attempt failed' })),
        },
        { description: 'present when the job gave a webhookUrl: how its delivery goes (never the URL)' },
      ),
    ),
  },
  { description: 'The state of a job and of each of its URLs.' },
)

/** The status document's one type, derived from its schema. */
export type StatusDocument = Static<typeof JobStatus>

export const Links = Type.Object(
  {
    uploaded: Type.Array(Type.String(), {
      description:
        "every Imgur link uploaded since start, in upload order (with `limit` or `cursor`: one page of them); with API keys on, those of the caller's jobs",
    }),
    next: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description:
          'only when paging: the cursor of the next page (pass it as `cursor`, with the same `limit`), or null on the last page',
      }),
    ),
  },
  { description: 'the links uploaded' },
)

export const LinksQuery = Type.Object({
  limit: Type.Optional(
    Type.String({
      description:
        'links per page, an integer from 1 to 1000 (default 1000 once `cursor` is given); without `limit` and `cursor` the answer is the whole list',
      examples: ['100'],
    }),
  ),
  cursor: Type.Optional(
    Type.String({ description: 'where the page starts: the `next` of the previous page (opaque)' }),
  ),
})

export const LinksAnswer = {
  description: 'the links (or one page of them)',
  headers: {
    Link: Type.String({
      description:
        'when paging and a next page exists: `</v1/images?limit=N&cursor=C>; rel="next"` (RFC 8288)',
    }),
  },
  content: { 'application/json': { schema: Links } },
}

export const SubmitHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      description:
        'makes retrying the submission safe: the same key with the same body within IDEMPOTENCY_TTL_MS answers the first answer again (`Idempotency-Replayed: true`) and creates no second job; 1 to 255 printable ASCII characters, per API key (or per address without keys)',
      examples: ['8e03978e-40d5-43e8-bc93-6894a57f9324'],
    }),
  ),
})

/** The limits' headers on a submission's answer (draft-ietf-httpapi-ratelimit-headers; see quotas.ts). */
const RateLimitHeaders = {
  'RateLimit-Limit': Type.Integer({
    description:
      'the limit nearest to exhaustion (or the one that refused): submissions per minute, or URLs per UTC day',
  }),
  'RateLimit-Remaining': Type.Integer({ description: 'what is left of it' }),
  'RateLimit-Reset': Type.Integer({ description: 'seconds until it resets' }),
}

export const AcceptedAnswer = {
  description: 'the job was accepted; `Location` is its status route',
  headers: {
    ...RateLimitHeaders,
    'Idempotency-Replayed': Type.Literal('true', {
      description:
        'the answer to an earlier submission with the same Idempotency-Key, replayed (no RateLimit headers then: nothing was counted)',
    }),
  },
  content: { 'application/json': { schema: Accepted } },
}

export const TooManySubmissions = {
  description:
    'a limit of this API key (or address) refused the submission whole: `submit_rate_limited` (SUBMIT_RATE_LIMIT per minute) or `daily_quota_exceeded` (DAILY_URL_QUOTA URLs per UTC day); `details.resetAt` says when it resets',
  headers: { ...RateLimitHeaders, 'Retry-After': Type.Integer({ description: 'seconds until it resets' }) },
  content: { 'application/json': { schema: ErrorBody } },
}
