/** Cancelling a job: the whole service against a real origin whose drips keep items in flight. */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import { apiKeys, bearer } from '../helpers/keys.ts'
import type { Origin } from '../helpers/origin.ts'
import { type StatusBody, startService } from '../helpers/service.ts'

/** Waits until `count` of `path`'s requests (or early closes) were seen: the check and the wait are one step. */
async function seen(origin: Origin, path: string, count: number, what: 'requests' | 'closes' = 'requests') {
  const counter = what === 'requests' ? origin.hits : origin.closedEarly
  while ((counter.get(path) ?? 0) < count)
    await (what === 'requests' ? origin.waitForRequest(path) : origin.waitForClose(path))
}

test('cancel: complete items stay, in-flight ones are aborted, waiting and retrying ones fail, none is retried', async (t) => {
  const { app, origin, service, status, submit } = await startService(t, {
    env: {
      UPLOAD_CONCURRENCY: '2',
      PER_HOST_CONCURRENCY: '2',
      // A retryable failure waits 30 s (jitter is 0.5 in tests): still waiting when the job is cancelled.
      RETRY_BASE_DELAY_MS: '60000',
      RETRY_MAX_DELAY_MS: '60000',
    },
  })
  const o = origin.url
  const urls = [
    `${o}/status/503`,
    `${o}/img/1.png`,
    `${o}/img/2.png`,
    `${o}/drip?every=20&n=1`,
    `${o}/drip?every=20&n=2`,
    `${o}/img/3.png`,
    `${o}/img/4.png`,
  ]
  const retried = once(service.queue, 'retry')
  const jobId = await submit(urls)
  await retried
  await seen(origin, '/drip', 2)
  const before = await status(jobId)
  assert.equal(before.status, 'in-progress')
  assert.deepEqual(
    before.items.map((item) => item.state),
    ['pending', 'complete', 'complete', 'pending', 'pending', 'pending', 'pending'],
  )

  const response = await app.inject({ method: 'POST', url: `/v1/images/upload/${jobId}/cancel` })
  assert.equal(response.statusCode, 200)
  assert.match(String(response.headers['content-type']), /^application\/json/)
  const body = response.json<StatusBody>()
  assert.equal(body.status, 'complete')
  assert.ok(body.finished !== null)
  assert.deepEqual(body, await status(jobId), 'the answer is the status document')
  assert.deepEqual(body.uploaded.complete, before.uploaded.complete, 'complete items stay complete')
  assert.deepEqual(body.uploaded.failed, [urls[0], urls[3], urls[4], urls[5], urls[6]])
  for (const index of [0, 3, 4, 5, 6]) {
    assert.deepEqual(body.items[index]?.reason, {
      code: 'cancelled',
      message: 'the client cancelled the job before this URL finished',
    })
  }
  assert.deepEqual(
    body.items.map((item) => item.attempts),
    [1, 1, 1, 1, 1, 0, 0],
    'the items not started never ran',
  )

  // Both drips' connections are closed by the service, not by the origin.
  await seen(origin, '/drip', 2, 'closes')
  await service.queue.onIdle()
  assert.equal(service.queue.active, 0)
  assert.equal((await service.store.stats()).pendingItems, 0)
  assert.equal(origin.hits.get('/status/503'), 1, 'the item waiting for its retry is not retried')
  assert.equal(origin.hits.get('/drip'), 2, 'the aborted downloads are not retried')
  assert.equal(origin.hits.get('/img/3.png'), undefined)
  assert.deepEqual(await status(jobId), body, 'nothing changes after the answer')

  const again = await app.inject({ method: 'POST', url: `/v1/images/upload/${jobId}/cancel` })
  assert.equal(again.statusCode, 200)
  assert.equal(again.body, response.body, 'a second cancel changes nothing and answers the same')
})

test('cancelling a complete job changes nothing; an unknown id is 404', async (t) => {
  const { app, origin, run } = await startService(t)
  const done = await run([`${origin.url}/img/1.png`, `${origin.url}/status/404`])
  const response = await app.inject({ method: 'POST', url: `/v1/images/upload/${done.id}/cancel` })
  assert.equal(response.statusCode, 200)
  assert.deepEqual(response.json(), done)
  assert.equal(done.items[1]?.reason?.code, 'download_http_status', 'a failure keeps its own reason')
  // The route takes no body: an empty one labelled JSON is fine, one that is not JSON is not.
  const url = `/v1/images/upload/${done.id}/cancel`
  const json = { 'content-type': 'application/json' }
  assert.equal((await app.inject({ method: 'POST', url, headers: json, payload: '' })).body, response.body)
  assert.equal((await app.inject({ method: 'POST', url, headers: json, payload: '{}' })).statusCode, 200)
  const notJson = await app.inject({ method: 'POST', url, headers: json, payload: 'cancel' })
  assert.equal(notJson.json().error, 'invalid_json')
  const text = await app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'text/plain' },
    payload: 'x',
  })
  assert.equal(text.statusCode, 415)

  for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
    const missing = await app.inject({ method: 'POST', url: `/v1/images/upload/${id}/cancel` })
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().error, 'job_not_found')
  }
})

test("with API keys, another key's job is 404 and stays as it was", async (t) => {
  const { keys, API_KEYS } = apiKeys('alice', 'bob')
  const { app, origin } = await startService(t, { env: { API_KEYS } })
  const submitted = await app.inject({
    method: 'POST',
    url: '/v1/images/upload',
    headers: bearer(keys.alice),
    payload: { urls: [`${origin.url}/drip?every=20`] },
  })
  const { jobId } = submitted.json()
  await seen(origin, '/drip', 1)
  const cancel = (key: string) =>
    app.inject({ method: 'POST', url: `/v1/images/upload/${jobId}/cancel`, headers: bearer(key) })

  const refused = await cancel(keys.bob)
  assert.equal(refused.statusCode, 404)
  assert.equal(refused.json().error, 'job_not_found')
  const anonymous = await app.inject({ method: 'POST', url: `/v1/images/upload/${jobId}/cancel` })
  assert.equal(anonymous.statusCode, 401)
  const mine = await app.inject({ url: `/v1/images/upload/${jobId}`, headers: bearer(keys.alice) })
  assert.equal(mine.json().status, 'in-progress', "bob's attempt changed nothing")
  assert.equal(origin.closedEarly.get('/drip'), undefined)

  const cancelled = await cancel(keys.alice)
  assert.equal(cancelled.statusCode, 200)
  assert.equal(cancelled.json().status, 'complete')
  assert.equal(cancelled.json().items[0].reason.code, 'cancelled')
  await seen(origin, '/drip', 1, 'closes')
})
