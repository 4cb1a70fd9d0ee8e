import assert from 'node:assert/strict'
import { test } from 'node:test'
import { request } from 'undici'
import { startService } from '../helpers/service.ts'

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
