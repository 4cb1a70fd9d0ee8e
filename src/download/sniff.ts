import { ServiceError } from '../errors.ts'
import { type FileKind, type ImageType, refusedImage, type Sniffed } from '../media.ts'

/**
 * file-type's answer, the module loaded with the first bytes `commonImage` cannot tell: until
 * then the pipeline's thread does without its code (about 1.3 MB of heap, which every full
 * collection of the thread would mark).
 */
async function fileTypeOf(bytes: Uint8Array) {
  const { fileTypeFromBuffer } = await import('file-type')
  return fileTypeFromBuffer(bytes)
}

const of = (kind: FileKind, mime: string, ext: string, name: string): Sniffed => ({ kind, mime, ext, name })

/** What Imgur's API takes (shared/notes/imgur-api.md), keyed by file-type's ext. */
const ACCEPTED: Record<string, Sniffed> = {
  jpg: of('image', 'image/jpeg', 'jpg', 'JPEG'),
  png: of('image', 'image/png', 'png', 'PNG'),
  apng: of('image', 'image/png', 'png', 'APNG'), // Imgur stores APNG as image/png
  gif: of('image', 'image/gif', 'gif', 'GIF'),
  tif: of('image', 'image/tiff', 'tiff', 'TIFF'),
  bmp: of('image', 'image/bmp', 'bmp', 'BMP'),
  mp4: of('video', 'video/mp4', 'mp4', 'MP4'),
  m4v: of('video', 'video/mp4', 'mp4', 'MP4'),
  mov: of('video', 'video/quicktime', 'mov', 'MOV'),
  webm: of('video', 'video/webm', 'webm', 'WebM'),
}
/** Images Imgur's API refuses ("File type invalid") that can be decoded and converted. */
const CONVERTIBLE: Record<string, Sniffed> = {
  webp: of('convertible', 'image/webp', 'webp', 'WebP'),
  avif: of('convertible', 'image/avif', 'avif', 'AVIF'),
  heic: of('convertible', 'image/heic', 'heic', 'HEIC/HEIF'),
}
const REFUSED_NAMES: Record<string, string> = { ico: 'ICO', cur: 'ICO' }

const unsupported = (message: string) => new ServiceError('unsupported_format', message)
const notAnImage = (what: string) => new ServiceError('not_an_image', `not an image: ${what}`)

/**
 * Decides by magic bytes what the downloaded bytes are, never by Content-Type or extension.
 * file-type does the sniffing; the allowlist and the stricter BMP/AVIF checks cover its known
 * looseness ("BM" alone reads as BMP, AVIF with major brand mif1 reads as HEIF).
 */
export async function classify(bytes: Uint8Array): Promise<Sniffed> {
  if (bytes.length === 0) throw notAnImage('the file is empty')
  const known = commonImage(bytes)
  if (known) return known
  const sniffed = await fileTypeOf(bytes)
  const found = sniffed?.ext === 'bmp' && !plausibleBmp(bytes) ? undefined : sniffed
  if (found) {
    const accepted = ACCEPTED[found.ext]
    if (accepted) return accepted
    if (found.ext === 'heic' && brands(bytes).some((b) => b === 'avif' || b === 'avis'))
      return CONVERTIBLE.avif as Sniffed
    const convertible = CONVERTIBLE[found.ext]
    if (convertible) return convertible
    const name = REFUSED_NAMES[found.ext]
    if (name) throw refusedImage(name)
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

/** The strict check: only what Imgur's `image` field takes as is. */
export async function identify(bytes: Uint8Array): Promise<ImageType> {
  const found = await classify(bytes)
  if (found.kind === 'convertible') throw refusedImage(found.name)
  if (found.kind === 'video') throw unsupported(`${found.name} is a video, not an image`)
  return { mime: found.mime, ext: found.ext }
}

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
const JPEG = [0xff, 0xd8, 0xff]
const GIF = [0x47, 0x49, 0x46]
/** PNG, JPEG and GIF: signatures no video container starts with. */
const IMAGE_SIGNATURES = [PNG, JPEG, [...GIF, 0x38]]
const startsWith = (bytes: Uint8Array, signature: number[]) => signature.every((b, i) => bytes[i] === b)

/**
 * PNG, APNG, JPEG and GIF told as file-type tells them, without its pass over every other
 * format's signature first, which was over a third of the bytes the pipeline's thread allocated
 * (a sampling profile under load: 38 %). It answers only where file-type would give the same
 * answer (a property test holds it to that); anything else, JPEG-LS and odd PNGs included, goes
 * to file-type.
 */
export function commonImage(bytes: Uint8Array): Sniffed | undefined {
  if (startsWith(bytes, GIF)) return ACCEPTED.gif
  if (startsWith(bytes, JPEG) && bytes.length > 3 && bytes[3] !== 0xf7) return ACCEPTED.jpg
  if (startsWith(bytes, PNG)) return pngOrApng(bytes)
  return undefined
}

/** The four Latin-1 characters at `at`: a PNG chunk's type, an ISO-BMFF brand. */
const fourCC = (b: Uint8Array, at: number) =>
  String.fromCharCode(b[at] as number, b[at + 1] as number, b[at + 2] as number, b[at + 3] as number)

/**
 * file-type's PNG walk (its detectors/png.js, for a buffer of known size): the first IDAT makes a
 * PNG, an acTL before it an APNG. Undefined wherever that walk would end another way: a negative
 * length, an IHDR that is not 13 bytes, another chunk before the IHDR, the end of the bytes (or a
 * chunk past it) before an IDAT, more than 512 chunks.
 */
function pngOrApng(bytes: Uint8Array): Sniffed | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let header = false
  for (let at = 8, count = 0; at + 8 < bytes.length && count < 512; count++) {
    const length = view.getInt32(at)
    const type = fourCC(bytes, at + 4)
    if (length < 0 || (type === 'IHDR' && length !== 13)) return undefined
    if (type === 'IHDR') header = true
    if (type === 'IDAT') return ACCEPTED.png
    if (type === 'acTL') return ACCEPTED.apng
    if (!header && type !== 'CgBI') return undefined
    at += 8 + length + 4
  }
  return undefined
}

/**
 * The video a download's first bytes announce, if any: decided before the rest is read. The
 * commonest images skip file-type here, as they do in `classify` (`commonImage`): it was the
 * largest allocator of the pipeline's thread.
 */
export async function sniffVideo(head: Uint8Array): Promise<Sniffed | undefined> {
  if (head.length === 0 || IMAGE_SIGNATURES.some((signature) => startsWith(head, signature))) return undefined
  const found = await fileTypeOf(head).catch(() => undefined)
  const known = found && ACCEPTED[found.ext]
  return known?.kind === 'video' ? known : undefined
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
  const out: string[] = []
  for (let at = 8; at + 4 <= Math.min(size, b.length, 256); at += at === 8 ? 8 : 4) out.push(fourCC(b, at))
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
