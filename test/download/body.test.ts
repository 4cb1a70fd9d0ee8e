import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import { collectCapped, decodedChunks, decoderFor } from '../../src/download/body.ts'

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
