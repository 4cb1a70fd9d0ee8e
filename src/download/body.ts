import type { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import { ServiceError } from '../errors.ts'

/** "10 MiB", "1.5 KiB", "1000 bytes": caps are shown to API users. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`
  }
  return `${bytes} bytes`
}

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

/**
 * Reads a response body into memory, counting DECODED bytes as they stream and failing on byte
 * cap+1 (never truncating): a gzip bomb stops after ~cap bytes of output, not after inflating.
 */
export async function readCapped(
  body: Readable,
  decoder: Transform | undefined,
  maxBytes: number,
  signal: AbortSignal,
): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  const collect = async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      total += chunk.length
      if (total > maxBytes) throw tooLarge(maxBytes)
      chunks.push(chunk)
    }
  }
  try {
    if (decoder) await pipeline(body, decoder, collect, { signal })
    else await pipeline(body, collect, { signal })
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new ServiceError('download_bad_encoding', 'origin sent a corrupt compressed body', {
        cause: error,
      })
    }
    throw error
  }
  return Buffer.concat(chunks, total)
}
