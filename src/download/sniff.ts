import { fileTypeFromBuffer } from 'file-type'
import { ServiceError } from '../errors.ts'

export type ImageType = { mime: string; ext: string }

/** What Imgur's API takes in the `image` field (shared/notes/imgur-api.md), keyed by file-type's ext. */
const ACCEPTED: Record<string, ImageType> = {
  jpg: { mime: 'image/jpeg', ext: 'jpg' },
  png: { mime: 'image/png', ext: 'png' },
  apng: { mime: 'image/png', ext: 'png' }, // Imgur stores APNG as image/png
  gif: { mime: 'image/gif', ext: 'gif' },
  tif: { mime: 'image/tiff', ext: 'tiff' },
  bmp: { mime: 'image/bmp', ext: 'bmp' },
}

const REFUSED_NAMES: Record<string, string> = {
  webp: 'WebP',
  avif: 'AVIF',
  heic: 'HEIC/HEIF',
  ico: 'ICO',
  cur: 'ICO',
}
const VIDEOS = new Set(['mp4', 'mov', 'webm', 'm4v'])

const unsupported = (message: string) => new ServiceError('unsupported_format', message)
const notAnImage = (what: string) => new ServiceError('not_an_image', `not an image: ${what}`)
const refusedImage = (name: string) => unsupported(`${name} images are not accepted by Imgur's API`)

/**
 * Decides by magic bytes what the downloaded bytes are, never by Content-Type or extension.
 * file-type does the sniffing; the allowlist and the stricter BMP/AVIF checks cover its known
 * looseness ("BM" alone reads as BMP, AVIF with major brand mif1 reads as HEIF).
 */
export async function identify(bytes: Uint8Array): Promise<ImageType> {
  if (bytes.length === 0) throw notAnImage('the file is empty')
  const sniffed = await fileTypeFromBuffer(bytes)
  const found = sniffed?.ext === 'bmp' && !plausibleBmp(bytes) ? undefined : sniffed
  if (found) {
    const accepted = ACCEPTED[found.ext]
    if (accepted) return accepted
    if (found.ext === 'heic' && brands(bytes).some((b) => b === 'avif' || b === 'avis'))
      throw refusedImage('AVIF')
    const name = REFUSED_NAMES[found.ext]
    if (name) throw refusedImage(name)
    if (VIDEOS.has(found.ext)) throw unsupported('video uploads are not supported yet')
    if (found.mime.startsWith('video/'))
      throw unsupported(`${found.ext.toUpperCase()} videos are not accepted`)
    if (found.mime.startsWith('image/')) throw refusedImage(found.ext.toUpperCase())
    if (found.ext !== 'xml' && found.ext !== 'bmp')
      throw notAnImage(`looks like ${found.ext.toUpperCase()} data`)
  }
  const text = describeText(bytes)
  if (text === 'SVG') throw refusedImage('SVG')
  if (text) throw notAnImage(`looks like ${text}`)
  const hex = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ')
  throw notAnImage(`unrecognised content (first bytes ${hex}${bytes.length > 8 ? '…' : ''})`)
}

/** "BM" must be followed by a real BITMAPFILEHEADER + DIB header, or it is just text starting "BM". */
function plausibleBmp(b: Uint8Array): boolean {
  if (b.length < 26) return false
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const dibSize = view.getUint32(14, true)
  if (![12, 40, 52, 56, 64, 108, 124].includes(dibSize) || b.length < 14 + dibSize) return false
  const pixelsAt = view.getUint32(10, true)
  if (pixelsAt < 14 + dibSize || pixelsAt >= b.length) return false
  const core = dibSize === 12 // OS/2 BITMAPCOREHEADER uses 16-bit fields
  const width = core ? view.getUint16(18, true) : view.getInt32(18, true)
  const height = core ? view.getUint16(20, true) : view.getInt32(22, true)
  const planes = view.getUint16(core ? 22 : 26, true)
  const bitCount = view.getUint16(core ? 24 : 28, true)
  return width > 0 && height !== 0 && planes === 1 && [1, 4, 8, 16, 24, 32].includes(bitCount)
}

/** The brands of an ISO-BMFF `ftyp` box (major and compatible). */
function brands(b: Uint8Array): string[] {
  const size = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0)
  const ascii = new TextDecoder('latin1')
  const out: string[] = []
  for (let at = 8; at + 4 <= Math.min(size, b.length, 256); at += at === 8 ? 8 : 4) {
    out.push(ascii.decode(b.subarray(at, at + 4)))
  }
  return out
}

/** Names the text formats origins commonly send instead of an image (error pages above all). */
function describeText(b: Uint8Array): 'HTML' | 'SVG' | 'XML' | 'JSON' | 'text' | undefined {
  const sample = b.subarray(0, 1024)
  // Control bytes other than tab/CR/LF/FF/ESC mean binary, not text.
  if (sample.some((x) => x < 0x20 && ![0x09, 0x0a, 0x0c, 0x0d, 0x1b].includes(x))) return undefined
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(sample, { stream: true })
  } catch {
    return undefined
  }
  const head = text
    .replace(/^\uFEFF/, '')
    .trimStart()
    .toLowerCase()
  if (head.startsWith('<')) {
    if (/<(!doctype html|html|head|body)[\s>]/.test(head)) return 'HTML'
    if (/<svg[\s>]/.test(head)) return 'SVG'
    return head.startsWith('<?xml') ? 'XML' : 'HTML'
  }
  if (head.startsWith('{') || head.startsWith('[')) return 'JSON'
  return 'text'
}
