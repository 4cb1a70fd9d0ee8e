import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createPreparer } from '../../src/convert/prepare.ts'
import { createDownloader, type Downloader, type Opened } from '../../src/download/download.ts'
import { createImgurClient } from '../../src/imgur/client.ts'
import { Uploads } from '../../src/jobs/uploads.ts'
import { processItem, type WorkerDeps } from '../../src/jobs/worker.ts'
import { PREPARE_OPTIONS } from '../helpers/formats.ts'
import { png } from '../helpers/images.ts'
import { type Origin, startOrigin } from '../helpers/origin.ts'
import { classic, type FakeImgur, formOf, startFakeImgur, success } from '../imgur/fake-imgur.ts'

let origin: Origin
let imgur: FakeImgur
/** Images the fake Imgur refuses (400), by their bytes. */
const refused: Buffer[] = []
const open: Array<{ close(): Promise<void> }> = []
before(async () => {
  ;[origin, imgur] = await Promise.all([
    startOrigin(),
    startFakeImgur(async (request) => {
      const image = Buffer.from(await ((await formOf(request)).get('image') as Blob).arrayBuffer())
      return refused.some((bytes) => bytes.equals(image)) ? classic(400, 'refused') : success('Fresh01')
    }),
  ])
})
after(async () => {
  await Promise.all([origin.close(), imgur.close(), ...open.map((thing) => thing.close())])
})

/** A worker whose downloads are all kept, to look at their bytes after the item. */
function worker() {
  const real = createDownloader({
    maxBytes: 1024 * 1024,
    timeoutMs: 5000,
    maxRedirects: 2,
    allowPrivateNetworks: true,
    userAgent: 'imgur-upload-service/0.1 (+test)',
  })
  const opened: Opened[] = []
  const downloader: Downloader = {
    open: async (url, signal) => {
      const one = await real.open(url, signal)
      opened.push(one)
      return one
    },
    close: () => real.close(),
  }
  const client = createImgurClient({ apiUrl: imgur.url, clientId: 'c', timeoutMs: 5000, userAgent: 't' })
  open.push(real, client)
  const deps: WorkerDeps = {
    downloader,
    imgur: client,
    preparer: createPreparer(PREPARE_OPTIONS),
    uploads: new Uploads(100),
    itemTimeoutMs: 10_000,
  }
  const run = (url: string) =>
    processItem(deps, { target: url, clientId: undefined }, new AbortController().signal)
  return { run, opened }
}

function serve(seed: number) {
  const bytes = png(seed, { padTo: 20_000 })
  origin.put(`/worker/${seed}.png`, bytes, 'image/png')
  return { url: `${origin.url}/worker/${seed}.png`, bytes }
}

const bytesOf = (opened: Opened | undefined) => {
  assert.equal(opened?.kind, 'file')
  return (opened as Extract<Opened, { kind: 'file' }>).bytes
}

test('once uploaded, the downloaded bytes are freed: Imgur got them whole, the buffer is empty', async () => {
  const { run, opened } = worker()
  const { url, bytes } = serve(301)
  const outcome = await run(url)
  assert.equal(outcome.reused, false)
  const sent = await formOf(imgur.seen.at(-1) as (typeof imgur.seen)[number])
  assert.deepEqual(Buffer.from(await (sent.get('image') as Blob).arrayBuffer()), bytes)
  const held = bytesOf(opened[0])
  assert.equal(held.length, 0, 'the buffer reads as empty')
  assert.equal(held.buffer.byteLength, 0, 'its memory is gone, not just the view')
})

test('bytes whose link was already known are freed too, without an upload', async () => {
  const { run, opened } = worker()
  const { url } = serve(302)
  await run(url)
  const before = imgur.seen.length
  const again = await run(url)
  assert.equal(again.reused, true)
  assert.equal(imgur.seen.length, before, 'nothing was sent to Imgur')
  assert.equal(opened.length, 2)
  assert.equal(bytesOf(opened[1]).length, 0)
})

test('after a failed upload the bytes are left to the garbage collector, untouched', async () => {
  const { run, opened } = worker()
  const { url, bytes } = serve(303)
  refused.push(bytes)
  await assert.rejects(run(url), { code: 'imgur_rejected' })
  assert.deepEqual(bytesOf(opened[0]), bytes, 'an upload cut short may still be writing them')
})
