import type { Readable } from 'node:stream'
import { ServiceError } from '../errors.ts'
import { formatBytes } from '../units.ts'
import type { Head } from './body.ts'

export const videoTooLarge = (maxBytes: number) =>
  new ServiceError('download_too_large', `video is larger than the ${formatBytes(maxBytes)} limit`)

/**
 * A video handed to the upload as it arrives, never held whole: memory stays at a chunk or two
 * whatever the file's size. `chunks` may be iterated once.
 */
export type VideoStream = {
  chunks: AsyncIterable<Buffer>
  /** Releases the origin connection and the deadline; safe to call at any time, more than once. */
  cancel(): void
}

/**
 * Yields the head already read, then the rest of the body, counting decoded bytes: byte cap+1
 * throws, so a truncated or oversized video can only end its upload with an error (the upload's
 * closing multipart boundary is sent after the last byte, so Imgur never sees a partial file as
 * whole). Every failure comes out as the download's own reason, through `fail`.
 */
export function videoStream(
  head: Head,
  rest: AsyncGenerator<Buffer>,
  body: Readable,
  maxBytes: number,
  fail: (error: unknown) => unknown,
  release: () => void,
): VideoStream {
  let released = false
  const done = () => {
    if (released) return
    released = true
    release()
  }
  async function* chunks(): AsyncGenerator<Buffer> {
    let total = 0
    const count = (chunk: Buffer) => {
      total += chunk.length
      if (total > maxBytes) throw videoTooLarge(maxBytes)
      return chunk
    }
    try {
      for (const chunk of head.chunks) yield count(chunk)
      if (!head.done) for await (const chunk of rest) yield count(chunk)
    } catch (error) {
      throw fail(error)
    } finally {
      done()
    }
  }
  return {
    chunks: chunks(),
    cancel() {
      // Destroying the body (it has error listeners: it is being iterated) ends a stalled read at once.
      if (!body.destroyed) body.destroy()
      done()
    },
  }
}
