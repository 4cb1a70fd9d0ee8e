import { pipeline as pipelineStreams, type Readable, type Transform } from 'node:stream'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import { ServiceError } from '../errors.ts'
import { formatBytes } from '../units.ts'

export const tooLarge = (maxBytes: number) =>
  new ServiceError('download_too_large', `image is larger than the ${formatBytes(maxBytes)} limit`)

/** We ask for `identity`; an origin that compresses anyway is decoded so the cap counts decoded bytes. */
export function decoderFor(contentEncoding: string | undefined): Transform | undefined {
  const encoding = (contentEncoding ?? '').trim().toLowerCase()
  if (encoding === '' || encoding === 'identity') return undefined
  if (encoding === 'gzip' || encoding === 'x-gzip') return createGunzip()
  if (encoding === 'deflate') return createInflate()
  if (encoding === 'br') return createBrotliDecompress()
  throw new ServiceError(
    'download_bad_encoding',
    `origin sent an unsupported Content-Encoding: ${encoding.slice(0, 40)}`,
  )
}

/** A corrupt compressed body is the origin's fault, not a network failure. */
function decodingError(error: unknown): unknown {
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new ServiceError('download_bad_encoding', 'origin sent a corrupt compressed body', {
      cause: error,
    })
  }
  return error
}

/** The decoded body, chunk by chunk. Stopping early destroys the body (and the decoder). */
export async function* decodedChunks(body: Readable, decoder: Transform | undefined): AsyncGenerator<Buffer> {
  const source: Readable = decoder ? pipelineStreams(body, decoder, () => {}) : body
  try {
    for await (const chunk of source) yield chunk as Buffer
  } catch (error) {
    throw decodingError(error)
  }
}

export type Head = { chunks: Buffer[]; size: number; done: boolean }

/** Reads at least `want` bytes, or up to the end: enough to tell a video from an image before buffering. */
export async function readHead(chunks: AsyncIterator<Buffer>, want: number): Promise<Head> {
  const head: Head = { chunks: [], size: 0, done: false }
  while (head.size < want) {
    const next = await chunks.next()
    if (next.done) {
      head.done = true
      break
    }
    head.chunks.push(next.value)
    head.size += next.value.length
  }
  return head
}

/**
 * Buffers the rest of a body after its head, counting DECODED bytes and failing on byte cap+1
 * (never truncating): a gzip bomb stops after ~cap bytes of output, not after inflating.
 */
export async function collectCapped(
  chunks: AsyncIterator<Buffer>,
  head: Head,
  maxBytes: number,
): Promise<Buffer> {
  const parts = [...head.chunks]
  let total = head.size
  let done = head.done
  try {
    while (true) {
      if (total > maxBytes) throw tooLarge(maxBytes)
      if (done) break
      const next = await chunks.next()
      if (next.done) done = true
      else {
        total += next.value.length
        parts.push(next.value)
      }
    }
  } finally {
    if (!done) await chunks.return?.()
  }
  return Buffer.concat(parts, total)
}
