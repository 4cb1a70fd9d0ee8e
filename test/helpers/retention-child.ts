/**
 * Run as a child process on a small heap by test/retention.test.ts: submits many 1,000-URL jobs
 * of long URLs that fail at once, and prints what the store retains once they are done.
 * argv: jobs, then config overrides as NAME=value.
 */

import pino from 'pino'
import { loadConfig } from '../../src/config.ts'
import { ServiceError } from '../../src/errors.ts'
import { statusJson } from '../../src/http/status.ts'
import type { MemoryJobStore } from '../../src/jobs/store.ts'
import { createService } from '../../src/service.ts'
import { parseSubmittedUrls } from '../../src/urls.ts'

const [jobs = '1', ...pairs] = process.argv.slice(2)
const env = Object.fromEntries(pairs.map((pair) => pair.split('=') as [string, string]))
const config = loadConfig({ IMGUR_API_URL: 'http://127.0.0.1:9', IMGUR_CLIENT_ID: 'x', ...env })
const service = await createService(config, pino({ level: 'silent' }), {
  downloader: {
    open: async () => {
      throw new ServiceError('download_http_status', 'the origin answered 404 Not Found')
    },
    close: async () => {},
  },
})
const pad = 'p'.repeat(1000)
for (let j = 0; j < Number(jobs); j += 1) {
  // A fragment makes the normalised URL differ from the submitted one, so both are kept.
  const urls = Array.from({ length: 1000 }, (_, i) => `https://origin.test/${j}/${i}/${pad}.png#f`)
  const parsed = parseSubmittedUrls(urls)
  if (!parsed.ok) throw new Error('the URLs did not parse')
  const job = await service.queue.submit(parsed.urls, parsed.targets)
  await service.queue.onIdle()
  // Read once, as a client would: the cached status document is part of what a job retains.
  statusJson(job)
}
// The memory store's own figures (this child runs the default, memory mode).
const store = service.store as MemoryJobStore
// With --expose-gc (a measurement by hand), heap figures are of live objects only.
;(globalThis as { gc?: () => void }).gc?.()
process.stdout.write(
  `${JSON.stringify({ jobs: store.size, retainedBytes: store.retainedBytes, pendingBytes: store.pendingBytes, heapUsed: process.memoryUsage().heapUsed, external: process.memoryUsage().external })}\n`,
)
await service.close(0)
