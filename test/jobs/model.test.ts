import assert from 'node:assert/strict'
import { test } from 'node:test'
import { viewJob } from '../../src/http/status.ts'
import { completeItem, createJob, failItem, jobStatus, startItem } from '../../src/jobs/model.ts'

const urls = ['https://a.test/1.png', 'https://a.test/2.png', 'https://a.test/3.png']

test('a new job is pending, with every URL pending and a uuid v4 id', () => {
  const job = createJob(urls, urls, {}, Date.UTC(2026, 10, 27, 10))
  assert.match(job.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  const view = viewJob(job)
  assert.equal(view.status, 'pending')
  assert.equal(view.created, '2026-11-27T10:00:00.000Z')
  assert.equal(view.finished, null)
  assert.deepEqual(view.uploaded, { pending: urls, complete: [], failed: [] })
})

test('items move to complete or failed; the job completes with the last one', () => {
  const job = createJob(urls, urls, {}, 0)
  const [a, b, c] = job.items
  assert.ok(a && b && c)
  startItem(job, a)
  assert.equal(jobStatus(job), 'in-progress')
  completeItem(job, a, { link: 'https://i.imgur.com/abc.png', reused: false }, 10)
  startItem(job, b)
  failItem(job, b, { code: 'download_http_status', message: 'origin answered HTTP 404' }, 20)
  assert.equal(jobStatus(job), 'in-progress')
  assert.equal(viewJob(job).finished, null)
  startItem(job, c)
  completeItem(job, c, { link: 'https://i.imgur.com/def.png', reused: false }, 30)
  const view = viewJob(job)
  assert.equal(view.status, 'complete')
  assert.equal(view.finished, '1970-01-01T00:00:00.030Z')
  assert.deepEqual(view.uploaded, {
    pending: [],
    complete: ['https://i.imgur.com/abc.png', 'https://i.imgur.com/def.png'],
    failed: [urls[1]],
  })
  assert.deepEqual(view.items[1], {
    url: urls[1],
    state: 'failed',
    attempts: 1,
    reason: { code: 'download_http_status', message: 'origin answered HTTP 404' },
  })
  assert.deepEqual(view.items[0], {
    url: urls[0],
    state: 'complete',
    attempts: 1,
    link: 'https://i.imgur.com/abc.png',
  })
})

test('illegal transitions throw instead of corrupting the lists', () => {
  const job = createJob(urls.slice(0, 1), urls.slice(0, 1))
  const item = job.items[0]
  assert.ok(item)
  completeItem(job, item, { link: 'https://i.imgur.com/x.png', reused: false })
  assert.throws(() => failItem(job, item, { code: 'x', message: 'x' }), /already complete/)
  assert.throws(() => startItem(job, item), /cannot start an item that is complete/)
  assert.equal(job.pending, 0)
})

test('the job id and created time are independent of the client id, which is never in the view', () => {
  const job = createJob(urls, urls, { clientId: 'secret-client-id' })
  assert.doesNotMatch(JSON.stringify(viewJob(job)), /secret-client-id/)
})
