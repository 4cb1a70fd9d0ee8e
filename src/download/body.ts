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

/** The head as one buffer: its chunk itself when there is one (usually), a copy only when there are several. */
export function headBytes(head: Head): Buffer {
  return head.chunks.length === 1 ? (head.chunks[0] as Buffer) : Buffer.concat(head.chunks, head.size)
}

/**
 * Buffers the rest of a body after its head, counting DECODED bytes and failing on byte cap+1
 * (never truncating): a gzip bomb stops after ~cap bytes of output, not after inflating. With the
 * body's length known (`length`: a Content-Length that counts decoded bytes), the bytes are copied
 * into one buffer of that size as they arrive: each chunk can be collected at once, instead of all
 * of them living on until a joined copy of the whole body is made at the end. The buffer returned
 * always has an ArrayBuffer of its own, shared with nothing, so that `release` may free it.
 */
export async function collectCapped(
  chunks: AsyncIterator<Buffer>,
  head: Head,
  maxBytes: number,
  length?: number,
): Promise<Buffer> {
  const sized =
    length !== undefined && Number.isSafeInteger(length) && length >= head.size && length <= maxBytes
  // Its own memory, never a slice of Buffer's shared pool (which a small image would keep whole).
  const into = sized ? Buffer.allocUnsafeSlow(length) : undefined
  // Without a length, or past it (an origin sending more than it declared), chunks are kept and joined.
  const parts: Buffer[] = []
  let total = 0
  const add = (chunk: Buffer) => {
    if (into !== undefined && parts.length === 0 && total + chunk.length <= into.length) {
      chunk.copy(into, total)
    } else {
      if (into !== undefined && parts.length === 0) parts.push(into.subarray(0, total))
      parts.push(chunk)
    }
    total += chunk.length
  }
  for (const chunk of head.chunks) add(chunk)
  let done = head.done
  try {
    while (true) {
      if (total > maxBytes) throw tooLarge(maxBytes)
      if (done) break
      const next = await chunks.next()
      if (next.done) done = true
      else add(next.value)
    }
  } finally {
    if (!done) await chunks.return?.()
  }
  // Fewer bytes than declared: only those that arrived are handed on, never uninitialised memory.
  if (into !== undefined && parts.length === 0) return total === into.length ? into : into.subarray(0, total)
  // Not Buffer.concat: below 4 KiB its copy is a slice of Buffer's shared pool, which `release` must not free.
  const joined = Buffer.allocUnsafeSlow(total)
  let at = 0
  for (const part of parts) at += part.copy(joined, at)
  return joined
}

/**
 * Frees the memory of a buffer `collectCapped` made, at once; the buffer reads as empty afterwards.
 * For after its last use: left to the garbage collector, the bytes of an item that outlived two
 * young-generation collections wait for a full one, and the items' bytes pile up meanwhile (README,
 * Performance). Never while anything may still read them (a request body being written).
 */
export function release(bytes: Buffer): void {
  const { buffer } = bytes
  if (buffer instanceof ArrayBuffer && !buffer.detached) buffer.transfer(0)
}
