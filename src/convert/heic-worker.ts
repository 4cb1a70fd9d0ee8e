/**
 * Runs in a worker thread: decodes one HEVC-coded HEIC with libheif built to WebAssembly. The
 * thread keeps the service's event loop free during a decode that takes seconds for a phone
 * photo, and is ended after each one, which gives back the WebAssembly heap (it never shrinks).
 * The size is read from the image's header first, so a bomb is refused before any pixel is decoded.
 */
import { parentPort, workerData } from 'node:worker_threads'

export type HevcRequest = { bytes: Uint8Array; maxInputPixels: number; memoryBytes: number }
export type HevcReply =
  | { ok: true; width: number; height: number; data: Uint8ClampedArray }
  | { ok: false; reason: 'no-image' | 'too-many-pixels' | 'out-of-memory'; width: number; height: number }

const { bytes, maxInputPixels, memoryBytes } = workerData as HevcRequest

// The Worker's resourceLimits bound V8's heap only, not WebAssembly memory, where libheif keeps
// the pixels: growing it past the budget is refused here, which libheif sees as a failed allocation.
// https://nodejs.org/api/worker_threads.html#new-workerfilename-options (resourceLimits)
let refused = false
type WasmMemory = { readonly buffer: ArrayBuffer; grow(pages: number): number }
// WebAssembly's types are in TypeScript's DOM lib, which this project does not load.
const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: { prototype: WasmMemory } } })
  .WebAssembly
const grow = Memory.prototype.grow
Memory.prototype.grow = function (this: WasmMemory, pages: number) {
  if (this.buffer.byteLength + pages * 65_536 > memoryBytes) {
    refused = true
    throw new RangeError(`WebAssembly memory over the ${memoryBytes}-byte budget`)
  }
  return grow.call(this, pages)
}
const { default: heic } = await import('heic-decode')

let reply: HevcReply
try {
  reply = await decode()
} catch (error) {
  if (!refused) throw error
  reply = { ok: false, reason: 'out-of-memory', width: 0, height: 0 }
}
parentPort?.postMessage(reply, reply.ok ? [reply.data.buffer as ArrayBuffer] : [])

async function decode(): Promise<HevcReply> {
  const images = await heic.all({ buffer: bytes })
  try {
    // heic-decode lists the top-level images; a phone photo has one (thumbnails and depth maps are not).
    const [image] = images
    if (image === undefined) return { ok: false, reason: 'no-image', width: 0, height: 0 }
    if (image.width * image.height > maxInputPixels) {
      return { ok: false, reason: 'too-many-pixels', width: image.width, height: image.height }
    }
    // libheif applies the irot/imir/clap transformations: the pixels come out as shown.
    const { width, height, data } = await image.decode()
    return { ok: true, width, height, data }
  } finally {
    images.dispose()
  }
}
