import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startService } from '../helpers/service.ts'

type Sample = { name: string; labels: Record<string, string>; value: number }

/** The samples of a Prometheus text exposition (label values here never hold `"` or `,`). */
function parse(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/)
      assert.ok(match, `a sample line: ${line}`)
      const labels = Object.fromEntries(
        [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]),
      )
      return { name: match[1] as string, labels, value: Number(match[3]) }
    })
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)

test('/metrics counts jobs, items, attempts and retries; labels stay bounded', async (t) => {
  const { app, origin, run, submit, service } = await startService(t, { env: { RETRY_MAX_ATTEMPTS: '3' } })
  const first = await run([`${origin.url}/img/1.png`, `${origin.url}/img/2.png`, `${origin.url}/html-as-png`])
  const second = await run([`${origin.url}/status/503`], { clientId: 'job-own-client-id' })
  assert.equal(first.uploaded.complete.length, 2)
  assert.equal(first.uploaded.failed.length, 1)
  const failedCode = first.items[2]?.reason?.code as string
  const retriedCode = second.items[0]?.reason?.code as string
  assert.equal(second.items[0]?.attempts, 3)
  assert.notEqual(failedCode, retriedCode)

  const response = await app.inject({ method: 'GET', url: '/metrics' })
  assert.equal(response.statusCode, 200)
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  const samples = parse(response.body)

  assert.equal(value(samples, 'imgur_upload_items_total', { outcome: 'complete' }), 2)
  assert.equal(value(samples, 'imgur_upload_items_total', { outcome: 'failed', code: failedCode }), 1)
  assert.equal(value(samples, 'imgur_upload_items_total', { outcome: 'failed', code: retriedCode }), 1)
  assert.equal(value(samples, 'imgur_upload_items_total', { outcome: 'failed' }), 2)
  assert.equal(value(samples, 'imgur_upload_attempts_total'), 3 + 3)
  assert.equal(value(samples, 'imgur_upload_retries_total', { code: retriedCode }), 2)
  assert.equal(value(samples, 'imgur_upload_item_duration_seconds_count'), 6)
  assert.equal(value(samples, 'imgur_upload_item_duration_seconds_count', { result: 'retry' }), 2)
  assert.equal(value(samples, 'imgur_upload_item_duration_seconds_count', { result: 'complete' }), 2)
  assert.equal(
    value(samples, 'imgur_upload_download_duration_seconds_count'),
    2,
    'the HTML never arrived as an image',
  )
  assert.equal(value(samples, 'imgur_upload_upload_duration_seconds_count'), 2)
  const uploaded = value(samples, 'imgur_upload_uploaded_bytes_total')
  assert.ok(uploaded > 0)
  assert.equal(
    value(samples, 'imgur_upload_downloaded_bytes_total'),
    uploaded,
    'every image arrived was uploaded',
  )
  assert.equal(value(samples, 'imgur_upload_jobs', { status: 'complete' }), 2)
  assert.equal(value(samples, 'imgur_upload_jobs', { status: 'pending' }), 0)
  assert.equal(value(samples, 'imgur_upload_queue_pending_items'), 0)
  assert.equal(value(samples, 'imgur_upload_items_in_flight'), 0)
  assert.equal(value(samples, 'imgur_upload_workers'), 8)
  assert.equal(value(samples, 'imgur_upload_accepting'), 1)
  assert.equal(value(samples, 'imgur_upload_budget_remaining', { key: 'ip', kind: 'post' }), 1250 - 2)
  assert.ok(
    value(samples, 'imgur_upload_budget_reset_timestamp_seconds', { kind: 'client' }) > Date.now() / 1000,
  )
  for (const name of [
    'process_cpu_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_seconds',
  ]) {
    assert.ok(
      samples.some((s) => s.name === name),
      name,
    )
  }

  // No label value may be unbounded: no URL, host, job id or client id.
  const forbidden = [
    first.id,
    second.id,
    origin.url,
    new URL(origin.url).host,
    'job-own-client-id',
    'configured-client-id',
  ]
  for (const sample of samples) {
    for (const label of Object.values(sample.labels)) {
      assert.doesNotMatch(label, /\/\/|[0-9a-f]{8}-[0-9a-f]{4}-/, `${sample.name} ${label}`)
      for (const word of forbidden) assert.ok(!label.includes(word), `${sample.name} ${label}`)
    }
  }

  // Jobs by status follow the work: a job waiting on a slow origin is in progress.
  await submit([`${origin.url}/drip?every=50`])
  await origin.waitForRequest('/drip')
  const during = parse((await app.inject({ method: 'GET', url: '/metrics' })).body)
  assert.equal(value(during, 'imgur_upload_jobs', { status: 'in-progress' }), 1)
  assert.equal(value(during, 'imgur_upload_items_in_flight'), 1)
  assert.equal(value(during, 'imgur_upload_queue_pending_items'), 1)
  await service.queue.close(0)
})

test('each app has its own registry: two apps in one process count apart', async (t) => {
  const a = await startService(t)
  const b = await startService(t)
  await a.run([`${a.origin.url}/img/1.png`])
  const scrape = async (app: typeof a.app) =>
    parse((await app.inject({ method: 'GET', url: '/metrics' })).body)
  assert.equal(value(await scrape(a.app), 'imgur_upload_items_total'), 1)
  assert.equal(value(await scrape(b.app), 'imgur_upload_items_total'), 0)
})
