import pino from 'pino'
import { Scheduler } from '../../src/jobs/scheduler.ts'
import { MemoryJobStore } from '../../src/jobs/store.ts'
import { queueContract } from '../contract/queue.ts'

queueContract('memory', async (work, { concurrency, maxAttempts }) => {
  const store = new MemoryJobStore({ retentionCount: 100, retentionMs: 60_000 })
  const queue = new Scheduler(
    {
      concurrency,
      perHostConcurrency: 10,
      maxPendingItems: 10_000,
      maxRateLimitWaitMs: 60_000,
      retry: { maxAttempts, baseDelayMs: 0, maxDelayMs: 0 },
    },
    {
      store,
      budgets: { reserve: () => ({ ok: true, release: () => {} }) },
      credentialKey: (clientId) => `client:${clientId ?? 'configured'}`,
      work,
      log: pino({ level: 'silent' }),
    },
  )
  return {
    queue,
    store,
    async close() {
      await queue.close(0)
      await store.close()
    },
  }
})
