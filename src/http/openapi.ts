/**
 * The OpenAPI 3.1 document, generated from the route schemas (never hand-written), served at
 * `GET /openapi.json`, and the interactive docs page at `/docs/` (swagger-ui serves its own
 * assets: no CDN).
 *
 * Each documented route declares an `operationId` (verb + noun in the API's words: `submitJob`,
 * `getJobStatus`), a `summary`, a `description` and every 4xx it answers; the rest is added here.
 * `npm run lint:openapi` lints the document with Redocly and Spectral; routes that are no API
 * (the page, its assets, /docs, /openapi.json) set `schema.hide`.
 */

import type { IncomingMessage, ServerResponse } from 'node:http'
import swagger, { type SwaggerTransform } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyBaseLogger, FastifyInstance, FastifyTypeProvider, RawServerDefault } from 'fastify'
import { ErrorBody } from './schemas.ts'

type Schema = {
  hide?: boolean
  tags?: string[]
  response?: Record<string, unknown>
  security?: Array<Record<string, string[]>>
}

const TAGS = [
  { name: 'images', description: 'Submit image URLs, follow their jobs, list the links uploaded' },
  { name: 'operations', description: 'Liveness, readiness, metrics and this document' },
]

/** The scheme the /v1 operations name when API_KEYS is set (src/http/access.ts); without keys it is not declared. */
const BEARER = {
  type: 'http' as const,
  scheme: 'bearer',
  description:
    'An API key (`imgur-upload keygen` makes one), sent as `Authorization: Bearer <key>`. Required on every /v1 route when the service sets API_KEYS; the other routes stay open.',
}

/**
 * Adds what every route shares but does not declare itself: a tag, the 500 answer of the error
 * handler, and its security: with API keys on, the /v1 routes' bearer requirement and 401 answer;
 * every other operation says `security: []`, open on purpose. Error answers
 * are always JSON (one error handler writes them), even on a route whose success is another media
 * type, so they name it. Only the document changes; validation and serialisation keep the route's
 * schema.
 */
const documenter =
  (secured: boolean): SwaggerTransform =>
  ({ schema: given, url }) => {
    const schema = given as Schema | undefined
    if (schema === undefined || schema.hide) return { schema: given, url }
    const api = url.startsWith('/v1/')
    const tags = schema.tags ?? [api ? 'images' : 'operations']
    const response: Record<string, unknown> = {
      ...schema.response,
      ...(secured &&
        api && {
          401: {
            ...ErrorBody,
            description:
              '`unauthorized`: no API key, or not a valid one (`WWW-Authenticate: Bearer`, with `error="invalid_token"` for a wrong key)',
          },
        }),
      500: schema.response?.['500'] ?? {
        ...ErrorBody,
        description: 'an unexpected error; the message holds no details',
      },
    }
    for (const [status, answer] of Object.entries(response)) {
      const json = answer as { content?: unknown; description?: string }
      if (Number(status) < 400 || json.content !== undefined) continue
      response[status] = {
        description: json.description,
        content: { 'application/json': { schema: answer } },
      }
    }
    const security = secured && api ? [{ bearer: [] }] : (schema.security ?? [])
    return { schema: { ...schema, tags, response, security }, url }
  }

export function registerOpenApi<Log extends FastifyBaseLogger, Provider extends FastifyTypeProvider>(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Log, Provider>,
  { secured }: { secured: boolean },
): void {
  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Imgur upload service',
        version: '0.1.0',
        description:
          'Downloads images from URLs and re-uploads the bytes to Imgur. Every error answers `{ error, message, details? }` with a stable `error` code.',
        license: { name: 'MIT', identifier: 'MIT' },
        contact: { name: 'imgur-upload-service maintainers' },
      },
      // Relative: the paths are served by whoever served this document, wherever it is deployed.
      servers: [{ url: '/', description: 'this service' }],
      tags: TAGS,
      ...(secured && { components: { securitySchemes: { bearer: BEARER } } }),
    },
    transform: documenter(secured),
  })
  app.register(swaggerUi, {
    routePrefix: '/docs',
    // validatorUrl null: the page would otherwise send the document to validator.swagger.io.
    uiConfig: { docExpansion: 'list', deepLinking: true, validatorUrl: null },
    // The page loads only its own assets, so it can say so. Not swagger-ui's default policy: that
    // one upgrades requests to https, which breaks the page on a plain-http deployment.
    staticCSP:
      "default-src 'self'; base-uri 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'",
  })
  app.register(async (scope) => {
    scope.get('/openapi.json', { schema: { hide: true } }, async () => scope.swagger())
  })
}
