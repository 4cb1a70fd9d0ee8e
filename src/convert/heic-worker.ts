/**
 * Runs in a worker thread: decodes one HEVC-coded HEIC with libheif built to WebAssembly. The
 * thread keeps the service's event loop free during a decode that takes seconds for a phone
 * photo, and is ended after each one, which gives back the WebAssembly heap (it never shrinks).
 * The size is read from the image's header first, so a bomb is refused before any pixel is decoded.
 */
import { parentPort, workerData } from 'node:worker_threads'
import heic from 'heic-decode'

export type HevcRequest = { bytes: Uint8Array; maxInputPixels: number }
export type HevcReply =
  | { ok: true; width: number; height: number; data: Uint8ClampedArray }
  | { ok: false; reason: 'no-image' | 'too-many-pixels'; width: number; height: number }

const { bytes, maxInputPixels } = workerData as HevcRequest
const images = await heic.all({ buffer: bytes })
try {
  // heic-decode lists the top-level images; a phone photo has one (thumbnails and depth maps are not).
  const [image] = images
  let reply: HevcReply
  if (image === undefined) reply = { ok: false, reason: 'no-image', width: 0, height: 0 }
  else if (image.width * image.height > maxInputPixels) {
    reply = { ok: false, reason: 'too-many-pixels', width: image.width, height: image.height }
  } else {
    // libheif applies the irot/imir/clap transformations: the pixels come out as shown.
    const { width, height, data } = await image.decode()
    reply = { ok: true, width, height, data }
  }
  parentPort?.postMessage(reply, reply.ok ? [reply.data.buffer as ArrayBuffer] : [])
} finally {
  images.dispose()
}
