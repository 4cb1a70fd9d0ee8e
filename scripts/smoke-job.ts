/**
 * The client side of the container smoke test: serves real images from a local fake origin,
 * submits them to the service at `argv[2]`, waits for `complete`, and checks that the links open
 * and that /health, /ready, /metrics and /docs answer. Exits non-zero on the first failure.
 * Usage: node scripts/smoke-job.ts http://127.0.0.1:3000
 */
import assert from 'node:assert/strict'
import { startOrigin } from '../test/helpers/origin.ts'
import { until } from './until.ts'

const service = process.argv[2]
if (!service) throw new Error('usage: node scripts/smoke-job.ts <service-url>')

const origin = await startOrigin()
try {
  await until(
    'the service to answer /health',
    30,
    async () => (await fetch(`${service}/health`)).ok || undefined,
  )
  const urls = ['/img/1.png', '/img/2.jpg', '/img/3.gif', '/apng.png'].map((path) => `${origin.url}${path}`)
  const submitted = await fetch(`${service}/v1/images/upload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ urls }),
  })
  assert.equal(submitted.status, 202, await submitted.clone().text())
  const { jobId } = (await submitted.json()) as { jobId: string }

  type Status = { status: string; uploaded: { complete: string[]; failed: string[] } }
  const job = await until('the job to complete', 60, async () => {
    const body = (await (await fetch(`${service}/v1/images/upload/${jobId}`)).json()) as Status
    return body.status === 'complete' ? body : undefined
  })
  assert.deepEqual(job.uploaded.failed, [], 'no URL failed')
  assert.equal(job.uploaded.complete.length, urls.length)
  for (const link of job.uploaded.complete) {
    const image = await fetch(link)
    assert.equal(image.status, 200, link)
    assert.match(String(image.headers.get('content-type')), /^image\//, link)
    assert.ok((await image.arrayBuffer()).byteLength > 0, link)
  }

  const health = (await (await fetch(`${service}/health`)).json()) as { status: string; imgurMode: string }
  assert.equal(health.status, 'ok')
  assert.equal(health.imgurMode, 'sandbox')
  assert.equal((await fetch(`${service}/ready`)).status, 200)
  const metrics = await (await fetch(`${service}/metrics`)).text()
  assert.match(metrics, new RegExp(`^imgur_upload_items_total\\{outcome="complete"\\} ${urls.length}$`, 'm'))
  const docs = await fetch(`${service}/docs/`)
  assert.equal(docs.status, 200)
  assert.match(String(docs.headers.get('content-type')), /^text\/html/)
  console.log(
    `job ${jobId}: ${job.uploaded.complete.length} links open; /health, /ready, /metrics, /docs answer`,
  )
} finally {
  await origin.close()
}
