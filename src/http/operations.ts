/**
 * What an operator or orchestrator asks of the service: is the process alive (`/health`), will it
 * take work (`/ready`), and how is it doing (`/metrics`, Prometheus text).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type Static, Type } from 'typebox'
import type { Budget } from '../budgets.ts'
import { createMetrics, MAX_BUDGETS, type MetricsDeps } from './metrics.ts'

const iso = (ms: number) => new Date(ms).toISOString()
const DateTime = Type.String({ format: 'date-time' })

const BudgetBody = Type.Object({
  limit: Type.Number(),
  remaining: Type.Number(),
  resetAt: DateTime,
  resetAssumed: Type.Optional(Type.Boolean({ description: 'Imgur sent no reset; a full window is assumed' })),
})

const Health = Type.Object(
  {
    status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
    reason: Type.Optional(
      Type.Union(
        [Type.Literal('shutting_down'), Type.Literal('queue_full'), Type.Literal('store_unavailable')],
        {
          description: 'why the service takes no work now (on /ready only)',
        },
      ),
    ),
    imgurMode: Type.Union([Type.Literal('live'), Type.Literal('sandbox')]),
    accepting: Type.Boolean({ description: 'whether a job submitted now would be accepted' }),
    workers: Type.Object({
      active: Type.Integer({ description: 'items being worked on now' }),
      concurrency: Type.Integer({ description: 'items worked on at most at once' }),
    }),
    queue: Type.Optional(
      Type.Object(
        {
          pendingItems: Type.Integer({ description: 'items not yet complete or failed, across jobs' }),
          maxPendingItems: Type.Integer(),
          jobs: Type.Integer({ description: 'jobs held, finished ones included until retention drops them' }),
        },
        {
          description:
            "the store's figures (a fleet's: every replica's); absent while its Redis cannot be reached",
        },
      ),
    ),
    budgets: Type.Array(
      Type.Object({
        key: Type.String({
          description:
            "'ip' for the per-IP POST budget, else `client:`/`account:` and a hash of the client id (never the id)",
          examples: ['client:3f2a9c0e5b1d'],
        }),
        post: Type.Optional(BudgetBody),
        client: Type.Optional(BudgetBody),
        user: Type.Optional(BudgetBody),
        blockedUntil: Type.Optional(DateTime),
        inFlight: Type.Integer({ description: 'uploads under way on this budget' }),
      }),
      {
        description: `the last known Imgur budgets (at most ${MAX_BUDGETS}), from Imgur's rate-limit headers`,
      },
    ),
  },
  {
    description:
      'the report: whether jobs are accepted, the workers, the queue and the last known Imgur budgets',
    examples: [
      {
        status: 'ok',
        imgurMode: 'sandbox',
        accepting: true,
        workers: { active: 2, concurrency: 8 },
        queue: { pendingItems: 5, maxPendingItems: 100000, jobs: 3 },
        budgets: [
          {
            key: 'client:3f2a9c0e5b1d',
            client: { limit: 12500, remaining: 12480, resetAt: '2026-11-28T10:00:00.000Z' },
            inFlight: 2,
          },
        ],
      },
    ],
  },
)
type HealthBody = Static<typeof Health>

const Metrics = {
  description: 'Prometheus text exposition format',
  content: { 'text/plain': { schema: Type.String({ examples: ['imgur_upload_attempts_total 3\n'] }) } },
}

export const operations: FastifyPluginAsyncTypebox<MetricsDeps> = async (app, deps) => {
  const { config, store, queue, budgets } = deps
  const metrics = createMetrics(deps)
  app.addHook('onClose', async () => metrics.close())

  const budget = (b: Budget | undefined) =>
    b && { limit: b.limit, remaining: b.remaining, resetAt: iso(b.resetAt), resetAssumed: b.resetAssumed }
  const report = async (ready: boolean): Promise<HealthBody> => {
    const stats = await store.stats().catch(() => undefined)
    const refusal = queue.refusal
    const refusing = ready && refusal !== undefined
    return {
      status: refusing ? 'unavailable' : 'ok',
      ...(refusing && { reason: refusal }),
      imgurMode: config.imgurMode,
      accepting: queue.accepting,
      workers: { active: queue.active, concurrency: config.uploadConcurrency },
      ...(stats && {
        queue: {
          pendingItems: stats.pendingItems,
          maxPendingItems: config.maxPendingItems,
          jobs: stats.jobs,
        },
      }),
      budgets: budgets
        .snapshot()
        .slice(0, MAX_BUDGETS)
        .map((entry) => ({
          key: entry.key,
          post: budget(entry.post),
          client: budget(entry.client),
          user: budget(entry.user),
          blockedUntil: entry.blockedUntil === undefined ? undefined : iso(entry.blockedUntil),
          inFlight: entry.inFlight,
        })),
    }
  }

  app.get(
    '/health',
    {
      schema: {
        operationId: 'getHealth',
        summary: 'Liveness: the process answers',
        description:
          'Answers 200 whenever the process does, with the same report as /ready: whether jobs are accepted, the workers and queue, and the last known Imgur budgets.',
        response: { 200: Health },
      },
    },
    async () => await report(false),
  )
  app.get(
    '/ready',
    {
      schema: {
        operationId: 'getReadiness',
        summary:
          'Readiness: 200 while the service accepts jobs, 503 when the queue is full or it is shutting down',
        description:
          'For a load balancer or orchestrator: 200 while a job submitted now would be accepted; otherwise 503 with the same report and its `reason` (`queue_full` or `shutting_down`).',
        response: {
          200: Health,
          503: { ...Health, description: 'the service takes no jobs now; `reason` says why' },
        },
      },
    },
    async (_request, reply) => {
      const body = await report(true)
      return reply.code(body.status === 'ok' ? 200 : 503).send(body)
    },
  )
  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics',
        description:
          "The service's own metrics are named `imgur_upload_*` (jobs, items, attempts, retries, durations, queue, Imgur budgets); `process_*` and `nodejs_*` are the process metrics.",
        response: { 200: Metrics },
      },
    },
    async (_request, reply) => {
      const text = await metrics.registry.metrics()
      return reply.type(metrics.registry.contentType).send(text)
    },
  )
}
