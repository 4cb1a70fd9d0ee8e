import assert from 'node:assert/strict'
import diagnostics from 'node:diagnostics_channel'
import { describe, type TestContext, test } from 'node:test'
import type { Worker } from 'node:worker_threads'
import sharp from 'sharp'
import { encode, inspect } from '../../src/convert/decode.ts'
import { decodeHevc } from '../../src/convert/hevc.ts'
import type { Limits } from '../../src/convert/limits.ts'
import { createPreparer } from '../../src/convert/prepare.ts'
import { classify } from '../../src/download/sniff.ts'
import { heicLarge, heicPhoto, noise, PREPARE_OPTIONS, webp } from '../helpers/formats.ts'

const OPTIONS = PREPARE_OPTIONS

type Coded = Error & { code?: string; retryable?: boolean }

function failsWith(code: string, retryable: boolean, message: RegExp) {
  return (error: Coded) => {
    assert.equal(error.code, code, error.message)
    assert.equal(error.retryable, retryable)
    assert.match(error.message, message)
    return true
  }
}

/** A WebP whose conversion takes far longer than a millisecond: a megapixel of noise. */
const slowWebp = () => noise(1000, 1000).webp({ effort: 0 }).toBuffer()

/**
 * Every worker thread started during the test (Node announces each on the `worker_threads`
 * diagnostics channel): whether it answered and whether it has ended. `online` runs when one
 * starts executing, long before libheif is even loaded.
 */
function watchWorkers(t: TestContext, online: () => void = () => {}) {
  const started: Array<{ worker: Worker; answered: boolean; exited: boolean }> = []
  const onStart = (message: unknown) => {
    const { worker } = message as { worker: Worker }
    const entry = { worker, answered: false, exited: false }
    worker.once('online', online)
    worker.once('message', () => {
      entry.answered = true
    })
    worker.once('exit', () => {
      entry.exited = true
    })
    started.push(entry)
  }
  diagnostics.subscribe('worker_threads', onStart)
  t.after(() => diagnostics.unsubscribe('worker_threads', onStart))
  return started
}

test('the deadline must be an integer >= 1', () => {
  assert.throws(() => createPreparer({ ...OPTIONS, timeoutMs: 0 }), {
    name: 'TypeError',
    message: 'Expected `timeoutMs` to be an integer >= 1, got `0`',
  })
})

describe('a preparation past its deadline', () => {
  test('fails with convert_timeout (permanent), and its slot is given back', async () => {
    const bytes = await slowWebp()
    const type = await classify(bytes)
    const preparer = createPreparer({ ...OPTIONS, timeoutMs: 1 })
    const timedOut = failsWith('convert_timeout', false, /took longer than the 1 ms deadline/)
    await assert.rejects(preparer.prepare(bytes, type), timedOut)
    await preparer.onIdle()
    assert.deepEqual([preparer.active, preparer.waiting], [0, 0])
    assert.deepEqual(sharp.counters(), { queue: 0, process: 0 }, 'libvips is not working on it any more')
    // With one slot, a leaked one would leave the next image waiting (convert_busy), never started.
    await assert.rejects(preparer.prepare(bytes, type), timedOut)
    await preparer.onIdle()
    assert.equal(preparer.active, 0)
  })

  test('while waiting for a slot fails with convert_busy (retryable) and leaves the queue', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const bytes = await webp(400, 200)
    const type = await classify(bytes)
    const preparer = createPreparer({ ...OPTIONS, timeoutMs: 5000 })
    const first = preparer.prepare(bytes, type)
    const second = preparer.prepare(bytes, type)
    assert.deepEqual([preparer.active, preparer.waiting], [1, 1])
    t.mock.timers.tick(5000)
    await assert.rejects(first, failsWith('convert_timeout', false, /longer than the 5 s deadline/))
    await assert.rejects(
      second,
      failsWith('convert_busy', true, /no conversion slot became free within the 5 s deadline \(1 images/),
    )
    assert.equal(preparer.waiting, 0)
    await preparer.onIdle()
    assert.equal(preparer.active, 0)
  })

  test('libvips itself stops at sharp’s timeout: the pipeline is killed, not left to finish', async () => {
    // A blur this wide takes minutes on a megapixel image; sharp's timeout (whole seconds) ends it.
    const bytes = await noise(2000, 2000).png({ compressionLevel: 0 }).toBuffer()
    const never = new AbortController().signal
    const limits: Limits = {
      maxInputPixels: 1e8,
      signal: never,
      deadline: performance.now() + 1,
      timeoutMs: 1,
    }
    const source = await inspect(bytes, await classify(bytes), limits)
    await assert.rejects(
      encode(source, (image) => image.blur(300).jpeg()),
      (error: Coded) => {
        failsWith('convert_timeout', false, /took longer than the 1 ms deadline/)(error)
        assert.match(String((error.cause as Error).message), /^timeout: \d+% complete/)
        return true
      },
    )
    assert.deepEqual(sharp.counters(), { queue: 0, process: 0 })
  })
})

describe('waiting for a conversion slot', () => {
  test("the caller's abort ends the wait at once; the waiter never takes a slot", async () => {
    const slow = await slowWebp()
    const small = await webp(40, 20)
    const preparer = createPreparer(OPTIONS)
    const running = preparer.prepare(slow, await classify(slow))
    const controller = new AbortController()
    const waiter = preparer.prepare(small, await classify(small), controller.signal)
    assert.deepEqual([preparer.active, preparer.waiting], [1, 1])
    controller.abort(new Error('client went away'))
    assert.equal(preparer.waiting, 0, 'removed from the queue by the abort itself')
    await assert.rejects(waiter, /client went away/)
    assert.equal((await running).converted?.from, 'image/webp')
    await preparer.onIdle()
    assert.equal(preparer.active, 0)
    // The slot is free for the next image.
    assert.equal((await preparer.prepare(small, await classify(small))).converted?.from, 'image/webp')
  })
})

describe('the HEIC decoder thread', () => {
  test('is terminated when the deadline passes while it decodes', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    // The deadline is made to pass the moment the thread runs: no race with the decode.
    const workers = watchWorkers(t, () => t.mock.timers.tick(30_000))
    const bytes = heicPhoto()
    const preparer = createPreparer(OPTIONS)
    await assert.rejects(
      preparer.prepare(bytes, await classify(bytes)),
      failsWith('convert_timeout', false, /longer than the 30 s deadline/),
    )
    await preparer.onIdle()
    assert.deepEqual(
      workers.map(({ answered, exited }) => ({ answered, exited })),
      [{ answered: false, exited: true }],
      'one decoder thread was started, and stopped before it could answer',
    )
    assert.equal(preparer.active, 0)
  })

  test('is terminated when the caller aborts while it decodes', async (t) => {
    const controller = new AbortController()
    const workers = watchWorkers(t, () => controller.abort(new Error('shutting down')))
    const bytes = heicPhoto()
    const preparer = createPreparer(OPTIONS)
    await assert.rejects(preparer.prepare(bytes, await classify(bytes), controller.signal), /shutting down/)
    await preparer.onIdle()
    assert.deepEqual(
      workers.map(({ answered, exited }) => ({ answered, exited })),
      [{ answered: false, exited: true }],
    )
  })

  test('a decode needing more memory than its budgets fails with convert_out_of_memory, not a crash', async (t) => {
    const workers = watchWorkers(t)
    const signal = new AbortController().signal
    const limits = { maxInputPixels: 100_000_000, memoryBytes: 2 ** 30, heapMb: 64, signal }
    // The pixels (WebAssembly memory): 2000 × 1500 needs ~24 MiB.
    await assert.rejects(
      decodeHevc(heicLarge(), 'HEIC/HEIF', { ...limits, memoryBytes: 20 * 2 ** 20 }),
      failsWith(
        'convert_out_of_memory',
        false,
        /the HEIC\/HEIF image needed more memory than its 20 MiB budget/,
      ),
    )
    // V8's heap (resourceLimits): libheif's JavaScript needs ~16 MB; Node stops the thread.
    await assert.rejects(
      decodeHevc(heicPhoto(), 'HEIC/HEIF', { ...limits, heapMb: 8 }),
      failsWith('convert_out_of_memory', false, /needed more memory than its 8 MB JavaScript heap/),
    )
    assert.deepEqual(
      workers.map(({ exited }) => exited),
      [true, true],
    )
  })

  test('the budget the pixel count gives is enough for a real 3-megapixel photo', async (t) => {
    const workers = watchWorkers(t)
    const bytes = heicLarge()
    const prepared = await createPreparer(OPTIONS).prepare(bytes, await classify(bytes))
    assert.equal(prepared.converted?.from, 'image/heic')
    const meta = await sharp(prepared.bytes).metadata()
    assert.deepEqual([meta.width, meta.height], [2000, 1500])
    assert.deepEqual(
      workers.map(({ exited }) => exited),
      [true],
    )
  })
})
