import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { assertPartition, startService } from './helpers/service.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function heapAfterGc(): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

test('soak: thousands of items over several jobs keep every URL in exactly one list at every poll', async (t) => {
  const { origin, sandbox, service, submit, status } = await startService(t, {
    sandbox: { budget: { posts: 100_000, clientCredits: 1_000_000 } },
    env: {
      UPLOAD_CONCURRENCY: '16',
      PER_HOST_CONCURRENCY: '16',
      JOB_RETENTION_COUNT: '1',
      RETRY_MAX_ATTEMPTS: '2',
    },
  })
  const before = heapAfterGc()
  const jobs = Array.from({ length: 6 }, (_, j) =>
    Array.from({ length: 500 }, (_, i) => {
      const n = j * 500 + i
      // One URL in fifty fails (404), so both outcomes are exercised under load.
      return n % 50 === 0 ? `${origin.url}/status/404?n=${n}` : `${origin.url}/img/${n}.png`
    }),
  )
  const ids = await Promise.all(jobs.map((urls) => submit(urls)))
  let polls = 0
  let done = false
  const idle = service.queue.onIdle().then(() => {
    done = true
  })
  while (!done) {
    for (const [j, id] of ids.entries()) {
      const body = await status(id)
      // A finished job may already be forgotten (retention keeps one): only live ones are checked.
      if (body.id !== undefined) assertPartition(body, jobs[j] as string[])
    }
    polls += 1
    await new Promise((resolve) => setImmediate(resolve))
  }
  await idle
  assert.ok(polls > 1, 'the invariant was checked while work was in flight')
  // Retention keeps only the newest finished job; the others answer 404 now.
  const finals = await Promise.all(ids.map((id) => status(id)))
  const kept = finals.filter((body) => body.status === 'complete')
  assert.equal(kept.length, 1)
  const index = finals.findIndex((body) => body.status === 'complete')
  assertPartition(kept[0] as (typeof finals)[number], jobs[index] as string[])
  assert.equal((await service.store.links()).length, 3000 - 60)
  assert.equal(sandbox.uploads.length, 3000 - 60)

  assert.equal((await service.store.stats()).jobs, 1)
  sandbox.reset()
  const after = heapAfterGc()
  const grown = after - before
  assert.ok(grown < 16 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MiB after retention`)
})
