import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { Redis } from 'ioredis'
import pino from 'pino'
import { createPreparer } from '../../src/convert/prepare.ts'
import { createDownloader } from '../../src/download/download.ts'
import { SharedUploads } from '../../src/fleet/uploads.ts'
import { createImgurClient } from '../../src/imgur/client.ts'
import { Uploads } from '../../src/jobs/uploads.ts'
import { processItem, type WorkerDeps } from '../../src/jobs/worker.ts'
import { png } from '../helpers/images.ts'
import { type Origin, startOrigin } from '../helpers/origin.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { type FakeImgur, startFakeImgur, success } from '../imgur/fake-imgur.ts'

const PREFIX = `test-worker-${process.pid}`
const CLIENT_ID = 'fleet0client0id'

let server: RedisServer
let origin: Origin
let imgur: FakeImgur
const open: Array<{ close(): Promise<void> }> = []
const connections: Redis[] = []
before(async () => {
  ;[server, origin, imgur] = await Promise.all([
    startRedis(),
    startOrigin(),
    startFakeImgur(() => success('Fresh01')),
  ])
})
after(async () => {
  for (const redis of connections) redis.disconnect()
  await Promise.all([server.stop(), origin.close(), imgur.close(), ...open.map((thing) => thing.close())])
})

function connect(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 1000 })
  redis.on('error', () => {})
  connections.push(redis)
  return redis
}

/** One replica's worker: its own downloader, client, local table and Redis connection. */
function replica(redisUrl = server.url, sharedOptions: { timeoutMs?: number } = {}) {
  const downloader = createDownloader({
    maxBytes: 1024 * 1024,
    timeoutMs: 5000,
    maxRedirects: 2,
    allowPrivateNetworks: true,
    userAgent: 'imgur-upload-service/0.1 (+test)',
  })
  const client = createImgurClient({
    apiUrl: imgur.url,
    clientId: CLIENT_ID,
    timeoutMs: 5000,
    userAgent: 't',
  })
  open.push(downloader, client)
  const preparer = createPreparer({
    maxImageBytes: 1024 * 1024,
    convertUnsupported: false,
    reencodeOversized: false,
    maxInputPixels: 1_000_000,
    concurrency: 1,
    timeoutMs: 5000,
  })
  const redis = connect(redisUrl)
  const shared = new SharedUploads({
    redis,
    prefix: PREFIX,
    log: pino({ level: 'silent' }),
    ...sharedOptions,
  })
  const deps: WorkerDeps = {
    downloader,
    imgur: client,
    preparer,
    uploads: new Uploads(100),
    shared,
    itemTimeoutMs: 10_000,
  }
  return { deps, shared, redis, client }
}

/** An image only this test serves, its URL and its de-duplication key. */
function image(seed: number, client: ReturnType<typeof replica>['client']) {
  const bytes = png(seed)
  origin.put(`/fleet/${seed}.png`, bytes, 'image/png')
  const hash = `${client.credentialKey()}:${createHash('sha256').update(bytes).digest('base64url')}`
  return { url: `${origin.url}/fleet/${seed}.png`, hash }
}

function run(deps: WorkerDeps, url: string, signal = new AbortController().signal, downloaded?: () => void) {
  return processItem(deps, { target: url, clientId: undefined }, signal, downloaded)
}

const uploads = () => imgur.seen.filter((request) => request.path === '/3/image').length

test("bytes in the fleet's table reuse its link without an upload", async () => {
  const a = replica()
  const { url, hash } = image(101, a.client)
  const earlier = { link: 'https://i.imgur.com/Earlier.png', imageId: 'Earlier', deletehash: 'dEarlier' }
  await replica().shared.set(hash, earlier)
  const before = uploads()
  assert.deepEqual(await run(a.deps, url), { ...earlier, reused: true })
  assert.equal(uploads(), before, 'nothing was sent to Imgur')
  assert.deepEqual(a.deps.uploads.get(hash), earlier, 'the local table remembers it too')
})

test('the lookup in the fleet’s table runs in `away`, once the download has ended and before the upload', async () => {
  const a = replica()
  const { url } = image(110, a.client)
  const seen: string[] = []
  const before = uploads()
  const deps: WorkerDeps = {
    ...a.deps,
    shared: {
      get: (hash) => {
        seen.push('get')
        return a.shared.get(hash)
      },
      set: (hash, known) => a.shared.set(hash, known),
    },
  }
  const outcome = await processItem(
    deps,
    { target: url, clientId: undefined },
    new AbortController().signal,
    () => seen.push('downloaded'),
    async (fn) => {
      seen.push('away')
      const known = await fn()
      seen.push(`back, ${uploads() - before} uploads`)
      return known
    },
  )
  assert.equal(outcome.reused, false)
  assert.deepEqual(seen, ['downloaded', 'away', 'get', 'back, 0 uploads'])
  assert.equal(uploads(), before + 1)
})

test('an image uploaded by one replica is reused by another', async () => {
  const [a, b] = [replica(), replica()]
  const { url, hash } = image(102, a.client)
  const before = uploads()
  const first = await run(a.deps, url)
  assert.equal(first.reused, false)
  assert.equal(uploads(), before + 1)
  await a.shared.flush() // a's link waits for its batch (up to 50 ms): written now
  assert.deepEqual(await b.shared.get(hash), {
    link: first.link,
    imageId: first.imageId,
    deletehash: first.deletehash,
  })
  const second = await run(b.deps, url)
  assert.deepEqual(second, {
    link: first.link,
    imageId: first.imageId,
    deletehash: first.deletehash,
    reused: true,
  })
  assert.equal(uploads(), before + 1)
})

test('with Redis down, the item uploads as a single process would', async () => {
  const lonely = await startRedis()
  const a = replica(lonely.url)
  await a.redis.ping()
  await lonely.stop()
  const { url } = image(103, a.client)
  const before = uploads()
  const outcome = await run(a.deps, url)
  assert.equal(outcome.reused, false)
  assert.equal(outcome.link, 'https://i.imgur.com/Fresh01.png')
  assert.equal(uploads(), before + 1)
})

test("an item cancelled while the fleet's table has not answered stops there", async (t) => {
  // A Redis that accepts connections and never answers.
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => sockets.add(socket)).listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.after(() => {
    for (const socket of sockets) socket.destroy()
    silent.close()
  })
  const { port } = silent.address() as { port: number }
  const a = replica(`redis://127.0.0.1:${port}`, { timeoutMs: 60_000 })
  const { url } = image(104, a.client)
  const controller = new AbortController()
  const before = uploads()
  const outcome = run(a.deps, url, controller.signal, () =>
    setImmediate(() => controller.abort(new Error('cancelled'))),
  )
  await assert.rejects(outcome, { message: 'cancelled' })
  assert.equal(uploads(), before)
})
