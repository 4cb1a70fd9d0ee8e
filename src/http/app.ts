/** buildApp(deps): the Fastify instance with its routes and error handling. It never listens. */
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import type { Logger } from 'pino'
import type { Budgets } from '../budgets.ts'
import type { Config } from '../config.ts'
import { ERRORS, isServiceError } from '../errors.ts'
import type { JobQueue, JobStore } from '../jobs/contract.ts'
import { formatDuration } from '../units.ts'
import { limitedAs, registerAccess } from './access.ts'
import { IdempotencyKeys, type IdempotencyStore } from './idempotency.ts'
import { registerOpenApi } from './openapi.ts'
import { operations } from './operations.ts'
import { Quotas } from './quotas.ts'
import { routes } from './routes.ts'
import { web } from './web.ts'

// Not `import … from 'node:http'`: an ES import of a built-in module reads every one of its
// exports, and `http.WebSocket`'s getter loads Node's own copy of undici (about 2 MB idle).
const { STATUS_CODES } = process.getBuiltinModule('node:http')

export type AppDeps = {
  config: Config
  store: JobStore
  queue: JobQueue
  budgets: Pick<Budgets, 'snapshot'>
  log: Logger
  /** Where Idempotency-Keys are kept: a fleet's Redis; default: this process. */
  idempotency?: IdempotencyStore | undefined
  /** The clock of the submission limits and Idempotency-Keys (tests move it across minutes, days and TTLs). */
  now?: () => number
}

/** One log line per request, when it completes, instead of Fastify's two. */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(_error: unknown, request: FastifyRequest, reply: FastifyReply): void {
    const fields = {
      method: request.method,
      url: request.url,
      statusCode: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
    }
    request.log.info(fields, 'request')
  }
}

const REQUEST_ID = /^[\w.:-]{1,128}$/

/** Fastify's own errors that mean "bad request", with the code and words we answer them with. */
const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [
    415,
    'unsupported_media_type',
    'send the body as Content-Type: application/json',
  ],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'body_too_large', 'the request body is larger than 1 MiB'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json', 'the request body is empty'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json', 'the request body is not valid JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_body', 'Content-Length does not match the body'],
}

/**
 * What a client whose request never reached Fastify is answered (Node's parser refused it, or it
 * did not arrive in time), in our error format rather than Fastify's; the connection then closes.
 */
function clientError(timeoutMs: number, log: Logger) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    // A reset connection has nobody to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return
    const [status, code, message] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [
            ERRORS.request_timeout.status,
            'request_timeout',
            `the request did not arrive whole within ${formatDuration(timeoutMs)}`,
          ]
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? [
              ERRORS.headers_too_large.status,
              'headers_too_large',
              'the request headers are larger than 16 KiB',
            ]
          : [400, 'bad_request', 'the request is not valid HTTP']
    // Slow or oversized requests are worth a line; malformed ones, the noise any open port
    // receives, only at debug level.
    if (status === 400) log.debug({ err: error }, 'malformed request refused')
    else log.info({ code }, 'request refused before it reached a route')
    const body = JSON.stringify({ error: code, message })
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      )
    }
    socket.destroy(error)
  }
}

export function buildApp({ config, store, queue, budgets, log, now, idempotency }: AppDeps) {
  const timeout = config.requestTimeoutMs
  const app = Fastify({
    loggerInstance: log,
    bodyLimit: 1024 * 1024,
    // A request must arrive whole, headers and body, within this (else 408 and the connection
    // closes): a client dribbling its body a byte at a time holds its partial body no longer.
    requestTimeout: timeout,
    clientErrorHandler: clientError(timeout, log),
    // A connection on which nothing moves either way is closed after as long (Node's socket
    // timeout: every read or write restarts it, so a long answer read slowly is never cut).
    // Status streams opt out: they have their own pings and idle rule (http/events.ts).
    connectionTimeout: timeout,
    http: {
      // Node's default (60 s) above requestTimeout would make it swap the two bounds and give a
      // body 60 s (ConnectionsList::Expired in node_http_parser.cc).
      headersTimeout: Math.min(timeout, 60_000),
      // Node looks for late requests every 30 s by default: a 30 s bound could stretch to 60 s.
      connectionsCheckingInterval: Math.min(timeout, 1000),
    },
    // Left as they are, on purpose: keepAliveTimeout (Fastify's 72 s) outlasts the 60 s idle
    // timeout of common load balancers, which must be the side that closes an idle connection;
    // maxConnections (none): past it Node drops new connections unanswered, health checks too.
    // Each connection is bounded in time and body; how many there are is the proxy's to bound.
    // Past find-my-way's 100 characters a job id would get Fastify's own 414 page, not our JSON 404.
    routerOptions: { maxParamLength: 2048 },
    logController: new OneLinePerRequest(),
    requestIdHeader: 'x-request-id',
    genReqId: (request) => {
      const given = request.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  // JSON is the only body this API takes; Fastify would otherwise parse text/plain too.
  app.removeContentTypeParser('text/plain')

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isServiceError(error) && error.statusCode !== undefined) {
      if (error.retryAfterMs !== undefined) reply.header('retry-after', Math.ceil(error.retryAfterMs / 1000))
      if (error.headers) reply.headers(error.headers)
      const body = {
        error: error.code,
        message: error.message,
        ...(error.details && { details: error.details }),
      }
      return reply.code(error.statusCode).send(body)
    }
    if (error.validation) {
      return reply.code(400).send({
        error: 'invalid_body',
        message: `invalid request: ${error.message}`,
        details: { problems: error.validation.map((v) => ({ path: v.instancePath, problem: v.message })) },
      })
    }
    const known = error.code ? CLIENT_ERRORS[error.code] : undefined
    if (known) return reply.code(known[0]).send({ error: known[1], message: known[2] })
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send({ error: 'bad_request', message: error.message })
    }
    request.log.error({ err: error }, 'request failed')
    return reply.code(500).send({ error: 'internal_error', message: 'internal error' })
  })

  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .send({ error: 'not_found', message: `no route for ${request.method} ${request.url.slice(0, 256)}` })
  })

  // A fleet's worker replica serves only what operators and orchestrators ask (ROLE=worker).
  if (config.role === 'worker') {
    app.register(operations, { config, store, queue, budgets })
    return app
  }

  registerAccess(app, config.apiKeys)
  const quotas = new Quotas({
    submitRateLimit: config.submitRateLimit,
    dailyUrlQuota: config.dailyUrlQuota,
    ...(now && { now }),
  })
  // Swagger must be registered before the routes it documents.
  registerOpenApi(app, { secured: config.apiKeys.size > 0 })
  app.register(routes, {
    store,
    queue,
    quotas,
    idempotency: idempotency ?? new IdempotencyKeys({ ttlMs: config.idempotencyTtlMs, ...(now && { now }) }),
    maxUrlsPerJob: config.maxUrlsPerJob,
    webhooks: config.webhookSecret !== undefined,
    streams: {
      idleTimeoutMs: config.streamIdleTimeoutMs,
      maxStreams: config.maxStreams,
      maxStreamsPerClient: config.maxStreamsPerClient,
      clientOf: limitedAs,
    },
  })
  app.register(operations, { config, store, queue, quotas, budgets })
  app.register(web, { imgurMode: config.imgurMode })
  return app
}

export type App = ReturnType<typeof buildApp>
