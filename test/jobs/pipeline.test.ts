/**
 * The pipeline in its own thread (src/jobs/pipeline.ts): what crosses between the threads —
 * outcomes, errors, aborts, budgets, the fleet's table — and its life: started by the first item,
 * ended when idle, replaced when it fails, never losing an item.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BudgetLedger, ParsedLimits } from '../../src/budgets.ts'
import { loadConfig } from '../../src/config.ts'
import { ServiceError } from '../../src/errors.ts'
import { createImgurClient } from '../../src/imgur/client.ts'
import type { Away } from '../../src/jobs/contract.ts'
import {
  imgurOptions,
  type PipelineLinks,
  pipelineSettings,
  type ThreadOptions,
  ThreadPipeline,
} from '../../src/jobs/pipeline.ts'
import type { Known } from '../../src/jobs/uploads.ts'
import type { Transfer } from '../../src/jobs/worker.ts'
import { png } from '../helpers/images.ts'
import { type Origin, startOrigin } from '../helpers/origin.ts'
import { type FakeImgur, json, startFakeImgur } from '../imgur/fake-imgur.ts'

let origin: Origin
let imgur: FakeImgur
let uploads = 0
before(async () => {
  ;[origin, imgur] = await Promise.all([
    startOrigin(),
    startFakeImgur(() => {
      uploads += 1
      const id = `Img${uploads}`
      return json(
        200,
        {
          success: true,
          status: 200,
          data: { id, link: `https://i.imgur.com/${id}.png`, deletehash: `del${id}` },
        },
        { 'x-ratelimit-clientlimit': '12500', 'x-ratelimit-clientremaining': String(12500 - 10 * uploads) },
      )
    }),
  ])
})
after(() => Promise.all([origin.close(), imgur.close()]))

const settings = () =>
  pipelineSettings(
    loadConfig({
      IMGUR_API_URL: imgur.url,
      IMGUR_CLIENT_ID: 'thread-client-id',
      FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
    }),
  )

/** A pipeline whose links record what the thread told the main thread. */
function start(options: ThreadOptions = {}, shared?: PipelineLinks['shared']) {
  const told: Array<{ update: [string, ParsedLimits] } | { transfer: Transfer }> = []
  const budgets: BudgetLedger = {
    update: (key, parsed) => told.push({ update: [key, parsed] }),
    on429: () => {},
  }
  const crashes: Error[] = []
  const pipeline = new ThreadPipeline(
    settings(),
    { budgets, shared, observe: (transfer) => told.push({ transfer }) },
    { onCrash: (error) => crashes.push(error), ...options },
  )
  const run = (target: string, signal = new AbortController().signal, away?: Away) => {
    const downloaded: string[] = []
    const outcome = pipeline.work(
      { jobId: 'j', index: 0, target, clientId: undefined },
      signal,
      () => downloaded.push(target),
      away,
    )
    return { outcome, downloaded }
  }
  return { pipeline, run, told, crashes }
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(5)
}

/** The error a settled promise rejected with. */
const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => assert.fail('expected a rejection'),
    (error: unknown) => error,
  )

test('an item runs in the thread: its link, its transfers, and the budgets Imgur reported before its outcome', async (t) => {
  const { pipeline, run, told } = start()
  t.after(() => pipeline.close())
  assert.equal(pipeline.running, false, 'no thread before the first item')
  const { outcome, downloaded } = run(`${origin.url}/img/31.png`)
  const done = await outcome
  assert.equal(pipeline.running, true)
  assert.match(done.link, /^https:\/\/i\.imgur\.com\/Img\d+\.png$/)
  assert.equal(done.reused, false)
  assert.deepEqual(downloaded, [`${origin.url}/img/31.png`])
  // Recorded by the time the outcome arrived: the queue's next reservation sees them.
  const update = told.find((entry) => 'update' in entry)
  assert.ok(update && 'update' in update)
  assert.match(update.update[0], /^client:[0-9a-f]{12}$/)
  assert.equal(update.update[1].client?.limit, 12500)
  const phases = told.flatMap((entry) => ('transfer' in entry ? [entry.transfer.phase] : []))
  assert.deepEqual(phases, ['download', 'upload'])
})

test('an error crosses as the same ServiceError: code, message and whether it is worth retrying', async (t) => {
  const { pipeline, run } = start()
  t.after(() => pipeline.close())
  const gone = await rejection(run(`${origin.url}/status/404`).outcome)
  assert.ok(gone instanceof ServiceError)
  assert.equal(gone.code, 'download_http_status')
  assert.equal(gone.retryable, false)
  assert.match(gone.message, /404/)
  const busy = await rejection(run(`${origin.url}/status/503`).outcome)
  assert.ok(busy instanceof ServiceError)
  assert.equal(busy.code, 'download_http_status')
  assert.equal(busy.retryable, true)
})

test('an abort reaches the thread: the download is dropped and the item rejects as cancelled', async (t) => {
  const { pipeline, run } = start()
  t.after(() => pipeline.close())
  const controller = new AbortController()
  const requested = origin.waitForRequest('/slow/32.png')
  const closed = origin.waitForClose('/slow/32.png')
  const { outcome, downloaded } = run(`${origin.url}/slow/32.png?ms=30000`, controller.signal)
  await requested
  controller.abort(new ServiceError('cancelled', 'the client cancelled the job before this URL finished'))
  const error = await rejection(outcome)
  assert.ok(error instanceof ServiceError)
  assert.equal(error.code, 'cancelled')
  assert.equal(downloaded.length, 1, "the host's slot is freed")
  await closed
})

for (const [how, path, cause] of [
  ['throws an uncaught error', 'throw', /an uncaught error in the thread/],
  ['exits', 'exit', /exited with code 3/],
] as const) {
  test(`a thread that ${how} fails its items with worker_lost, retryable; the next item gets a new thread`, async (t) => {
    const { pipeline, run, crashes } = start({
      entry: new URL('../helpers/failing-pipeline-thread.ts', import.meta.url),
    })
    t.after(() => pipeline.close())
    const bystander = run(`${origin.url}/slow/33.png?ms=30000`)
    const { outcome, downloaded } = run(`${origin.url}/${path}`)
    for (const lost of [await rejection(outcome), await rejection(bystander.outcome)]) {
      assert.ok(lost instanceof ServiceError)
      assert.equal(lost.code, 'worker_lost')
      assert.equal(lost.retryable, true)
      assert.match(lost.message, cause)
    }
    assert.equal(downloaded.length, 1, "the hosts' slots are freed")
    assert.equal(crashes.length, 1)
    assert.match(String(crashes[0]?.message), cause)
    const again = await run(`${origin.url}/img/34.png`).outcome
    assert.match(again.link, /^https:\/\/i\.imgur\.com\//)
  })
}

test('a thread that reaches its heap limit fails its items with worker_lost; the next item gets a new thread', async (t) => {
  const { pipeline, run, crashes } = start({
    entry: new URL('../helpers/failing-pipeline-thread.ts', import.meta.url),
    maxHeapBytes: 64 * 1024 * 1024,
  })
  t.after(() => pipeline.close())
  const lost = await rejection(run(`${origin.url}/hoard`).outcome)
  assert.ok(lost instanceof ServiceError)
  assert.equal(lost.code, 'worker_lost')
  assert.equal(lost.retryable, true)
  assert.match(lost.message, /memory limit/)
  assert.equal(crashes.length, 1)
  const again = await run(`${origin.url}/img/38.png`).outcome
  assert.match(again.link, /^https:\/\/i\.imgur\.com\//)
})

test('an idle thread ends; the next item starts another, and a conversion works in each', async (t) => {
  const { pipeline, run, crashes } = start({ idleMs: 20 })
  t.after(() => pipeline.close())
  // A WebP is converted: the first thread loads libvips, and ends idle.
  const first = await run(`${origin.url}/webp.png`).outcome
  assert.deepEqual(first.converted, { from: 'image/webp', to: 'image/png' })
  await until(() => !pipeline.running)
  // Another thread loads it again, with the first one gone: the process carries on.
  const second = await run(`${origin.url}/img/35.png`).outcome
  assert.equal(pipeline.running, true)
  assert.match(second.link, /^https:\/\/i\.imgur\.com\//)
  await until(() => !pipeline.running)
  assert.deepEqual(crashes, [])
})

test("the fleet's table is asked through the main thread: a known link is reused without an upload", async (t) => {
  const bytes = png(36)
  const key = createImgurClient({ ...imgurOptions(settings()) }).credentialKey(undefined)
  const hash = `${key}:${createHash('sha256').update(bytes).digest('base64url')}`
  const known: Known = { link: 'https://i.imgur.com/Fleet1.png', imageId: 'Fleet1', deletehash: 'delFleet1' }
  const table = new Map<string, Known>([[hash, known]])
  const sets: string[] = []
  const { pipeline, run } = start(
    {},
    {
      get: async (wanted) => table.get(wanted),
      set: async (wanted, value) => {
        sets.push(wanted)
        table.set(wanted, value)
      },
    },
  )
  t.after(() => pipeline.close())
  origin.put('/fleet-known.png', bytes)
  const before = uploads
  const reused = await run(`${origin.url}/fleet-known.png`).outcome
  assert.deepEqual(reused, { ...known, reused: true })
  assert.equal(uploads, before, 'Imgur was not asked')
  // Bytes the fleet has not seen are uploaded, and told to its table.
  const fresh = await run(`${origin.url}/img/37.png`).outcome
  assert.equal(fresh.reused, false)
  assert.equal(sets.length, 1)
  const { link, imageId, deletehash } = fresh
  assert.deepEqual(table.get(sets[0] ?? ''), { link, imageId, deletehash })
})

test("each item's lookup in the fleet's table runs in that item's `away`, on the main thread", async (t) => {
  /** Which item's `away` is calling its function right now (the lookup is asked at once). */
  let inside: string | undefined
  const asked: Array<string | undefined> = []
  const { pipeline, run } = start(
    {},
    {
      get: async () => {
        asked.push(inside)
        return undefined
      },
      set: async () => {},
    },
  )
  t.after(() => pipeline.close())
  const awayOf =
    (name: string): Away =>
    (fn) => {
      inside = name
      try {
        return fn()
      } finally {
        inside = undefined
      }
    }
  const [first, second] = await Promise.all([
    run(`${origin.url}/img/40.png`, undefined, awayOf('first')).outcome,
    run(`${origin.url}/img/41.png`, undefined, awayOf('second')).outcome,
  ])
  assert.equal(first.reused, false)
  assert.equal(second.reused, false)
  assert.deepEqual(asked.sort(), ['first', 'second'])
})

test("when the fleet's table cannot answer, the item fails with that error", async (t) => {
  const { pipeline, run } = start(
    {},
    {
      get: async () => {
        throw new ServiceError('store_unavailable', 'Redis did not answer')
      },
      set: async () => {},
    },
  )
  t.after(() => pipeline.close())
  const error = await rejection(run(`${origin.url}/img/38.png`).outcome)
  assert.ok(error instanceof ServiceError)
  assert.equal(error.code, 'store_unavailable')
  assert.equal(error.message, 'Redis did not answer')
})

test('a closed pipeline refuses items and its thread has ended', async () => {
  const { pipeline, run } = start()
  await run(`${origin.url}/img/39.png`).outcome
  await pipeline.close()
  assert.equal(pipeline.running, false)
  const error = await rejection(run(`${origin.url}/img/40.png`).outcome)
  assert.ok(error instanceof ServiceError)
  assert.equal(error.code, 'cancelled')
})
