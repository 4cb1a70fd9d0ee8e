import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import { collectCapped, decodedChunks, decoderFor, headBytes, release } from '../../src/download/body.ts'

const read = (bytes: Buffer, encoding: string | undefined, maxBytes = 1024) =>
  collectCapped(
    decodedChunks(Readable.from([bytes]), decoderFor(encoding)),
    { chunks: [], size: 0, done: false },
    maxBytes,
  )

test('gzip, x-gzip, deflate and br are decoded; identity and none pass through', async () => {
  const data = Buffer.from('decoded bytes are what count')
  assert.deepEqual(await read(gzipSync(data), 'gzip'), data)
  assert.deepEqual(await read(gzipSync(data), 'X-Gzip'), data)
  assert.deepEqual(await read(deflateSync(data), 'deflate'), data)
  assert.deepEqual(await read(brotliCompressSync(data), 'br'), data)
  assert.deepEqual(await read(data, 'identity'), data)
  assert.deepEqual(await read(data, undefined), data)
})

test('the cap counts decoded bytes: exactly the cap passes, one more fails', async () => {
  assert.equal((await read(gzipSync(Buffer.alloc(1024)), 'gzip')).length, 1024)
  await assert.rejects(read(gzipSync(Buffer.alloc(1025)), 'gzip'), {
    code: 'download_too_large',
    message: 'image is larger than the 1 KiB limit',
  })
})

test('an unsupported or corrupt encoding is a permanent failure', async () => {
  assert.throws(() => decoderFor('zstd'), {
    code: 'download_bad_encoding',
    message: 'origin sent an unsupported Content-Encoding: zstd',
  })
  assert.throws(() => decoderFor('gzip, br'), { code: 'download_bad_encoding' })
  await assert.rejects(
    read(Buffer.from('definitely not gzip'), 'gzip'),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, 'download_bad_encoding')
      assert.equal(error.message, 'origin sent a corrupt compressed body')
      return true
    },
  )
})

/** The body's chunks after a head of `headChunks`, collected with a declared `length`. */
const sized = (head: Buffer[], rest: Buffer[], length: number | undefined, maxBytes = 1024) =>
  collectCapped(
    decodedChunks(Readable.from(rest), undefined),
    { chunks: head, size: head.reduce((n, c) => n + c.length, 0), done: false },
    maxBytes,
    length,
  )

test('with a declared length the bytes land in one buffer of that size, the same bytes as without', async () => {
  const bytes = Buffer.from(Array.from({ length: 700 }, (_, i) => i % 251))
  const head = [bytes.subarray(0, 100), bytes.subarray(100, 150)]
  const rest = [bytes.subarray(150, 400), bytes.subarray(400)]
  const collected = await sized(head, rest, 700)
  assert.deepEqual(collected, bytes)
  assert.equal(collected.buffer.byteLength, 700, 'one buffer of the declared size, not a copy of one')
  assert.deepEqual(await sized(head, rest, undefined), bytes)
})

test('a body shorter or longer than declared keeps exactly the bytes that arrived', async () => {
  const bytes = Buffer.from('0123456789abcdef')
  const short = await sized([bytes.subarray(0, 4)], [bytes.subarray(4, 10)], 16)
  assert.deepEqual(short, bytes.subarray(0, 10))
  const long = await sized([bytes.subarray(0, 4)], [bytes.subarray(4, 10), bytes.subarray(10)], 8)
  assert.deepEqual(long, bytes)
})

test('the cap holds whatever length is declared', async () => {
  await assert.rejects(sized([Buffer.alloc(10)], [Buffer.alloc(1015)], 1025), { code: 'download_too_large' })
  await assert.rejects(sized([Buffer.alloc(10)], [Buffer.alloc(1015)], 100), { code: 'download_too_large' })
  assert.equal((await sized([Buffer.alloc(10)], [Buffer.alloc(1014)], 1024)).length, 1024)
})

test('the head is sniffed as it is when it is one chunk, joined when it is several', () => {
  const one = Buffer.from('one chunk')
  assert.equal(headBytes({ chunks: [one], size: one.length, done: false }), one)
  const joined = headBytes({ chunks: [Buffer.from('two '), Buffer.from('chunks')], size: 10, done: false })
  assert.equal(joined.toString(), 'two chunks')
})

test('every collected body has an ArrayBuffer of its own, which release frees at once', async () => {
  const bytes = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251))
  const bodies = [
    await sized([bytes.subarray(0, 100)], [bytes.subarray(100)], 3000, 4096), // one buffer of the declared size
    await sized([bytes.subarray(0, 100)], [bytes.subarray(100)], 4000, 4096), // fewer bytes than declared
    await sized([bytes.subarray(0, 100)], [bytes.subarray(100)], 1000, 4096), // more bytes than declared
    await sized([bytes.subarray(0, 100)], [bytes.subarray(100)], undefined, 4096), // no length: joined
    await sized([bytes.subarray(0, 10)], [], undefined), // a body smaller than Buffer's pool slices
  ]
  // A neighbour from Buffer's shared pool, which a pooled body would have shared memory with.
  const neighbour = Buffer.from('in the shared pool')
  for (const body of bodies) {
    assert.ok(body.length > 0)
    assert.equal(body.buffer.byteLength >= body.length, true)
    assert.notEqual(body.buffer, neighbour.buffer, 'never a slice of the shared pool')
    release(body)
    assert.equal(body.length, 0, 'the body reads as empty')
    assert.equal(body.buffer.byteLength, 0, 'its memory is gone')
    release(body) // twice is harmless
  }
  assert.equal(neighbour.toString(), 'in the shared pool')
})
