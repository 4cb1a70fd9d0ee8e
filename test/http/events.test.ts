import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import { request } from 'undici'
import { JobStatus } from '../../src/http/schemas.ts'
import { statusSerialisations, viewJob } from '../../src/http/status.ts'
import { memoryOnly, startService } from '../helpers/service.ts'
import { heldOrigin, longUrls, statusData } from '../helpers/streams.ts'

async function readEvents(
  url: string,
): Promise<Array<{ event: string; data: { status: string; uploaded: unknown } }>> {
  const response = await request(url)
  assert.equal(response.statusCode, 200)
  assert.match(String(response.headers['content-type']), /^text\/event-stream/)
  const text = await response.body.text()
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('event:'))
    .map((block) => {
      const [event, data] = block.split('\n')
      return {
        event: event?.slice('event: '.length) ?? '',
        data: JSON.parse(data?.slice('data: '.length) ?? ''),
      }
    })
}

test('the event stream sends the status at once and on change, and ends after complete', async (t) => {
  const { app, origin, submit, status } = await startService(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const jobId = await submit([
    `${origin.url}/img/1.png`,
    `${origin.url}/img/2.png`,
    `${origin.url}/status/404`,
  ])
  const events = await readEvents(`${base}/v1/images/upload/${jobId}/events`)
  assert.ok(events.length >= 1)
  assert.ok(events.every((e) => e.event === 'status'))
  const last = events.at(-1)
  assert.equal(last?.data.status, 'complete')
  assert.deepEqual(last?.data, await status(jobId))
})

test('a finished job streams its final status once; an unknown job is a JSON 404', async (t) => {
  const { app, origin, run } = await startService(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const done = await run([`${origin.url}/img/3.png`])
  const events = await readEvents(`${base}/v1/images/upload/${done.id}/events`)
  assert.equal(events.length, 1)
  assert.equal(events[0]?.data.status, 'complete')
  const missing = await request(`${base}/v1/images/upload/00000000-0000-4000-8000-000000000000/events`)
  assert.equal(missing.statusCode, 404)
  assert.equal(((await missing.body.json()) as { error: string }).error, 'job_not_found')
})

test('the status route and every stream send the same text, serialised once per version of the job', async (t) => {
  const held = await heldOrigin(t)
  const { app, config, service, submit } = await startService(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  // Each start changes the job; a fleet's workers take items up over time, not all at submission.
  const waiting = Math.min(config.uploadConcurrency, config.perHostConcurrency)
  const started = new Promise<void>((resolve) => {
    let attempts = 0
    service.queue.on('attempt', () => {
      attempts += 1
      if (attempts === waiting) resolve()
    })
  })
  const jobId = await submit(longUrls(held.url, 30, 20))
  await started
  const poll = async () => {
    const response = await app.inject({ method: 'GET', url: `/v1/images/upload/${jobId}` })
    assert.equal(response.statusCode, 200)
    assert.equal(response.headers['content-type'], 'application/json; charset=utf-8')
    return response.body
  }
  const before = statusSerialisations()
  const polled = [await poll()]
  // Three streams open while the job waits on its origin, so their first status is the same version.
  const streams = await Promise.all([1, 2, 3].map(() => request(`${base}/v1/images/upload/${jobId}/events`)))
  polled.push(await poll())
  held.release()
  const sent = await Promise.all(streams.map(async (stream) => statusData(await stream.body.text())))
  await service.queue.onIdle()
  polled.push(await poll(), await poll())

  const job = await service.store.get(jobId)
  assert.ok(job)
  const final = polled.at(-1)
  assert.equal(final, JSON.stringify(viewJob(job)))
  for (const data of sent) assert.equal(data.at(-1), final)
  assert.equal(new Set(sent.map((data) => data[0])).size, 1)
  const texts = [...polled, ...sent.flat()]
  const serialised = statusSerialisations() - before
  assert.ok(texts.length > new Set(texts).size)
  await t.test(
    'each text was serialised once',
    {
      skip: memoryOnly(
        "the status cache is keyed on the store's view: the memory store's is its live job, a fleet's store makes a snapshot per read (each poll, each stream's first event)",
      ),
    },
    () => assert.equal(serialised, new Set(texts).size),
  )
})

test("the status route's JSON is byte for byte what the response schema's serialiser made of viewJob", async (t) => {
  const { app, origin, run, service } = await startService(t)
  const done = await run([
    `${origin.url}/img/1.png`,
    `${origin.url}/same-a.png`,
    `${origin.url}/same-b.png`,
    `${origin.url}/webp.png`,
    `${origin.url}/status/404`,
  ])
  const job = await service.store.get(done.id)
  assert.ok(job)
  assert.ok(done.items.some((item) => item.converted) && done.items.some((item) => item.reused))
  const cached = await app.inject({ method: 'GET', url: `/v1/images/upload/${done.id}` })
  const reference = Fastify()
  reference.get('/', { schema: { response: { 200: JobStatus } } }, async () => viewJob(job))
  const serialised = await reference.inject({ method: 'GET', url: '/' })
  assert.equal(cached.body, serialised.body)
  assert.equal(cached.headers['content-type'], serialised.headers['content-type'])
})
