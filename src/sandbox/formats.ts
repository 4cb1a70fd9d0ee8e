/**
 * The sandbox's own magic-byte check (it must not share the service's sniffing: an emulator that
 * reuses the client's code can only agree with it). Dimensions are read from headers only.
 */
export type Format = {
  type: string
  ext: string
  width: number
  height: number
  animated: boolean
}

const MP4_BRANDS = new Set([
  'isom',
  'iso2',
  'iso3',
  'iso4',
  'iso5',
  'iso6',
  'mp41',
  'mp42',
  'avc1',
  'M4V ',
  'M4VH',
  'M4VP',
  'dash',
  'mmp4',
  '3gp4',
  '3gp5',
  '3g2a',
])

function startsWith(bytes: Uint8Array, magic: number[], offset = 0): boolean {
  return magic.every((byte, index) => bytes[offset + index] === byte)
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.subarray(start, end)).toString('latin1')
}

/** Formats Imgur takes in the `image` field: JPEG, PNG (and APNG), GIF, TIFF, BMP. */
export function sniffImage(bytes: Uint8Array): Format | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (startsWith(bytes, [0xff, 0xd8, 0xff]))
    return { type: 'image/jpeg', ext: 'jpg', ...jpegSize(bytes, view) }
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return png(bytes, view)
  if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') return gif(bytes, view)
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) {
    return { type: 'image/tiff', ext: 'tiff', animated: false, ...tiffSize(view) }
  }
  if (startsWith(bytes, [0x42, 0x4d]) && bytes.length >= 26) return bmp(view)
  return undefined
}

/** Formats Imgur takes in the `video` field: MP4 and MOV (ISO BMFF `ftyp`), WebM (EBML). */
export function sniffVideo(bytes: Uint8Array): Format | undefined {
  const video = { ext: 'mp4', width: 0, height: 0, animated: true }
  if (bytes.length >= 12 && ascii(bytes, 4, 8) === 'ftyp') {
    const brand = ascii(bytes, 8, 12)
    if (brand === 'qt  ') return { ...video, type: 'video/quicktime' }
    // HEIC and AVIF are `ftyp` files too: only video brands pass.
    if (MP4_BRANDS.has(brand)) return { ...video, type: 'video/mp4' }
    return undefined
  }
  if (startsWith(bytes, [0x1a, 0x45, 0xdf, 0xa3])) return { ...video, type: 'video/webm' }
  return undefined
}

function png(bytes: Uint8Array, view: DataView): Format {
  const format = { type: 'image/png', ext: 'png', width: 0, height: 0, animated: false }
  if (bytes.length >= 24 && ascii(bytes, 12, 16) === 'IHDR') {
    format.width = view.getUint32(16)
    format.height = view.getUint32(20)
  }
  // APNG: an acTL chunk before the first IDAT (https://wiki.mozilla.org/APNG_Specification).
  for (let offset = 8; offset + 8 <= bytes.length; ) {
    const chunk = ascii(bytes, offset + 4, offset + 8)
    if (chunk === 'acTL') format.animated = true
    if (chunk === 'acTL' || chunk === 'IDAT' || chunk === 'IEND') break
    offset += 12 + view.getUint32(offset)
  }
  return format
}

function gif(bytes: Uint8Array, view: DataView): Format {
  const format = { type: 'image/gif', ext: 'gif', width: 0, height: 0, animated: false }
  if (bytes.length < 13) return format
  format.width = view.getUint16(6, true)
  format.height = view.getUint16(8, true)
  const colorTable = (flags: number) => (flags & 0x80 ? 3 * 2 ** ((flags & 0x07) + 1) : 0)
  const skipSubBlocks = (start: number) => {
    let offset = start
    while (offset < bytes.length && bytes[offset] !== 0) offset += (bytes[offset] ?? 0) + 1
    return offset + 1
  }
  let frames = 0
  let offset = 13 + colorTable(bytes[10] ?? 0)
  while (offset < bytes.length && frames < 2) {
    const block = bytes[offset]
    if (block === 0x21) offset = skipSubBlocks(offset + 2)
    else if (block === 0x2c) {
      frames += 1
      offset = skipSubBlocks(offset + 10 + colorTable(bytes[offset + 9] ?? 0) + 1)
    } else break
  }
  format.animated = frames > 1
  return format
}

function jpegSize(bytes: Uint8Array, view: DataView): { width: number; height: number; animated: boolean } {
  let offset = 2
  while (offset + 9 <= bytes.length && bytes[offset] === 0xff) {
    const marker = bytes[offset + 1] ?? 0
    // SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { width: view.getUint16(offset + 7), height: view.getUint16(offset + 5), animated: false }
    }
    offset += 2 + view.getUint16(offset + 2)
  }
  return { width: 0, height: 0, animated: false }
}

function tiffSize(view: DataView): { width: number; height: number } {
  const size = { width: 0, height: 0 }
  if (view.byteLength < 8) return size
  const little = view.getUint8(0) === 0x49
  const ifd = view.getUint32(4, little)
  if (ifd + 2 > view.byteLength) return size
  const entries = view.getUint16(ifd, little)
  for (let index = 0; index < entries; index += 1) {
    const entry = ifd + 2 + index * 12
    if (entry + 12 > view.byteLength) break
    const tag = view.getUint16(entry, little)
    const short = view.getUint16(entry + 2, little) === 3
    const value = short ? view.getUint16(entry + 8, little) : view.getUint32(entry + 8, little)
    if (tag === 256) size.width = value
    if (tag === 257) size.height = value
  }
  return size
}

function bmp(view: DataView): Format {
  const format = { type: 'image/bmp', ext: 'bmp', width: 0, height: 0, animated: false }
  const header = view.getUint32(14, true)
  if (header === 12) {
    format.width = view.getUint16(18, true)
    format.height = view.getUint16(20, true)
  } else if (header >= 40) {
    format.width = Math.abs(view.getInt32(18, true))
    // A negative height means a top-down bitmap.
    format.height = Math.abs(view.getInt32(22, true))
  }
  return format
}
