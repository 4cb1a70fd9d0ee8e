/**
 * Redis memory per submitted URL in the fleet's store: INFO used_memory before and after adding
 * jobs of 1,000 typical 60-character URLs, after every item completed with an Imgur link (a job
 * of an API key, so its links are kept twice: the fleet's list and the key's), and after a
 * cancelled job. Runs its own redis-server. `node bench/redis-memory.ts [jobs]`
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { keys } from '../src/fleet/keys.ts'
import { connectRedis } from '../src/fleet/redis.ts'
import { RedisJobStore } from '../src/fleet/store.ts'
import { createJob } from '../src/jobs/model.ts'
import { startRedis } from '../test/helpers/redis.ts'

const JOBS = Number(process.argv[2] ?? 20)
const URLS = 1_000
const server = await startRedis()
const redis = connectRedis(server.url)

async function usedMemory(): Promise<number> {
  const info = await redis.info('memory')
  return Number(/used_memory:(\d+)/.exec(info)?.[1])
}

/** 60 characters, like a CDN's photo URL. */
const url = () => `https://cdn.example.com/uploads/2024/06/${randomBytes(8).toString('hex')}.jpg`
const imageId = () => randomBytes(6).toString('base64url').slice(0, 7)

async function measure(label: string, owner: string | undefined, settle: 'complete' | 'cancel') {
  const prefix = `m-${randomUUID()}`
  const store = await RedisJobStore.open(redis, {
    prefix,
    retentionCount: 10_000,
    retentionMs: 3_600_000,
  })
  const base = await usedMemory()
  const jobs = Array.from({ length: JOBS }, () => {
    const urls = Array.from({ length: URLS }, url)
    return createJob(urls, urls, { owner })
  })
  for (const job of jobs) await store.add(job)
  const added = await usedMemory()
  const itemsKey = keys(prefix).items(jobs[0]?.id ?? '')
  const listAdded = Number(await redis.memory('USAGE', itemsKey, 'SAMPLES', 0))
  for (const job of jobs) {
    if (settle === 'cancel')
      await store.cancel(job.id, { code: 'cancelled', message: 'The job was cancelled' })
    else
      await Promise.all(
        job.items.map((_, index) => {
          const id = imageId()
          const outcome = { link: `https://i.imgur.com/${id}.jpg`, reused: false, imageId: id }
          return store.complete(job.id, index, {
            ...outcome,
            deletehash: randomBytes(11).toString('base64url'),
          })
        }),
      )
  }
  const settled = await usedMemory()
  const total = JOBS * URLS
  const listSettled = Number(await redis.memory('USAGE', itemsKey, 'SAMPLES', 0))
  const perUrl = (bytes: number) => (bytes / total).toFixed(1)
  process.stdout.write(
    `${label}: ${total} URLs; used_memory per URL: pending ${perUrl(added - base)} B, ` +
      `after ${settle} ${perUrl(settled - base)} B; ` +
      `one job's item list per URL: ${(listAdded / URLS).toFixed(1)} B, then ${(listSettled / URLS).toFixed(1)} B\n`,
  )
  await store.close()
}

await measure('anonymous jobs, completed', undefined, 'complete')
await measure("an API key's jobs, completed", 'key-1', 'complete')
await measure('anonymous jobs, cancelled', undefined, 'cancel')
await redis.quit()
await server.stop()
