import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const CHILD = new URL('./helpers/retention-child.ts', import.meta.url).pathname

async function retain(heapMb: number, jobs: number, env: string[] = []) {
  const { stdout } = await run(process.execPath, [
    `--max-old-space-size=${heapMb}`,
    CHILD,
    String(jobs),
    ...env,
  ])
  return JSON.parse(stdout) as { jobs: number; retainedBytes: number; pendingBytes: number; heapUsed: number }
}

// Without the byte budget, 40 such jobs (about 4.3 MB of heap each) kill a 64 MB heap.
test('finished jobs are evicted by retained bytes, so a small heap survives many large jobs', async () => {
  const budget = 16 * 1024 * 1024
  const result = await retain(64, 40, [`JOB_RETENTION_BYTES=${budget}`])
  assert.ok(result.retainedBytes <= budget, `${result.retainedBytes} bytes retained`)
  assert.ok(result.jobs >= 1 && result.jobs < 40, `${result.jobs} jobs kept`)
  assert.equal(result.pendingBytes, 0, 'settled items leave the pending budget')
})

test('with default settings the service lives on a 256 MB heap', async () => {
  const result = await retain(256, 100)
  assert.ok(result.retainedBytes <= 64 * 1024 * 1024)
  assert.ok(result.jobs < 100)
})
