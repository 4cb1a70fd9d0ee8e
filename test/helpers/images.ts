/**
 * Tiny but valid images, built in memory so tests need no fixture files. Every builder is pure
 * and gives distinct bytes per seed (the seed's 32 bits end up in the pixels or a comment).
 */
import { crc32, deflateSync } from 'node:zlib'

const u32be = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

/** One PNG chunk: length, type, data and the CRC of type and data. */
export function chunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  return Buffer.concat([u32be(data.length), body, u32be(crc32(body))])
}

/** 1×1 RGBA PNG whose pixel is the seed. `animated` adds a second frame (APNG); `padTo` pads with a private ancillary chunk. */
export function png(seed: number, opts: { padTo?: number; animated?: boolean } = {}): Buffer {
  const pixel = (s: number) => deflateSync(Buffer.concat([Buffer.from([0]), u32be(s)]))
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0])
  const frameControl = (sequence: number) =>
    chunk(
      'fcTL',
      Buffer.concat([
        u32be(sequence),
        u32be(1),
        u32be(1),
        u32be(0),
        u32be(0),
        Buffer.from([0, 1, 0, 10, 0, 0]),
      ]),
    )
  const parts = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)]
  if (opts.animated) parts.push(chunk('acTL', Buffer.concat([u32be(2), u32be(0)])), frameControl(0))
  parts.push(chunk('IDAT', pixel(seed)))
  if (opts.animated) parts.push(frameControl(1), chunk('fdAT', Buffer.concat([u32be(2), pixel(~seed)])))
  const iend = chunk('IEND', Buffer.alloc(0))
  if (opts.padTo !== undefined) {
    const padding = opts.padTo - Buffer.concat(parts).length - iend.length - 12
    if (padding < 0) throw new RangeError(`png(): padTo must be at least ${opts.padTo - padding}`)
    parts.push(chunk('paDd', Buffer.alloc(padding)))
  }
  return Buffer.concat([...parts, iend])
}

/** 8×8 grey baseline JPEG: one DC-only block with one-code Huffman tables; the seed sits in a COM segment. */
export function jpeg(seed: number): Buffer {
  const segment = (marker: number, data: Uint8Array) =>
    Buffer.concat([Buffer.from([0xff, marker, (data.length + 2) >> 8, (data.length + 2) & 0xff]), data])
  const oneCodeTable = (tableClass: number) => Buffer.from([tableClass << 4, 1, ...Array(15).fill(0), 0]) // a single 1-bit code for symbol 0
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    segment(0xe0, Buffer.from([0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0])),
    segment(0xfe, Buffer.from(`seed ${seed >>> 0}`)),
    segment(0xdb, Buffer.from([0, ...Array(64).fill(1)])),
    segment(0xc0, Buffer.from([8, 0, 8, 0, 8, 1, 1, 0x11, 0])),
    segment(0xc4, oneCodeTable(0)),
    segment(0xc4, oneCodeTable(1)),
    segment(0xda, Buffer.from([1, 1, 0, 0, 63, 0])),
    Buffer.from([0x3f]), // DC diff 0 ("0"), end of block ("0"), padded with ones
    Buffer.from([0xff, 0xd9]),
  ])
}

/** 1×1 GIF89a; the seed is spread over the two palette entries. */
export function gif(seed: number): Buffer {
  const s = u32be(seed)
  return Buffer.concat([
    Buffer.from('GIF89a', 'latin1'),
    Buffer.from([1, 0, 1, 0, 0x80, 0, 0]),
    Buffer.from([s[0] ?? 0, s[1] ?? 0, s[2] ?? 0, s[3] ?? 0, 0, 0]),
    Buffer.from([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0]),
    Buffer.from([2, 2, 0x44, 0x01, 0]), // LZW: clear, index 0, end
    Buffer.from([0x3b]),
  ])
}

/** 1×1 32-bit BMP (BITMAPFILEHEADER + BITMAPINFOHEADER); the pixel is the seed. */
export function bmp(seed: number): Buffer {
  const b = Buffer.alloc(58)
  b.write('BM', 0, 'latin1')
  b.writeUInt32LE(58, 2)
  b.writeUInt32LE(54, 10)
  b.writeUInt32LE(40, 14)
  b.writeInt32LE(1, 18)
  b.writeInt32LE(1, 22)
  b.writeUInt16LE(1, 26)
  b.writeUInt16LE(32, 28)
  b.writeUInt32LE(4, 34)
  b.writeInt32LE(2835, 38)
  b.writeInt32LE(2835, 42)
  b.writeUInt32LE(seed >>> 0, 54)
  return b
}

/** 4×1 8-bit greyscale little-endian baseline TIFF; the four pixels are the seed. */
export function tiff(seed: number): Buffer {
  const b = Buffer.alloc(178)
  b.write('II', 0, 'latin1')
  b.writeUInt16LE(42, 2)
  b.writeUInt32LE(12, 4)
  b.writeUInt32BE(seed >>> 0, 8)
  const entries: Array<[tag: number, type: number, value: number]> = [
    [256, 3, 4], // ImageWidth
    [257, 3, 1], // ImageLength
    [258, 3, 8], // BitsPerSample
    [259, 3, 1], // Compression: none
    [262, 3, 1], // PhotometricInterpretation: BlackIsZero
    [273, 4, 8], // StripOffsets
    [277, 3, 1], // SamplesPerPixel
    [278, 3, 1], // RowsPerStrip
    [279, 4, 4], // StripByteCounts
    [282, 5, 162], // XResolution -> rational at 162
    [283, 5, 170], // YResolution -> rational at 170
    [296, 3, 2], // ResolutionUnit: inch
  ]
  b.writeUInt16LE(entries.length, 12)
  entries.forEach(([tag, type, value], i) => {
    const at = 14 + i * 12
    b.writeUInt16LE(tag, at)
    b.writeUInt16LE(type, at + 2)
    b.writeUInt32LE(1, at + 4)
    if (type === 3) b.writeUInt16LE(value, at + 8)
    else b.writeUInt32LE(value, at + 8)
  })
  for (const at of [162, 170]) {
    b.writeUInt32LE(72, at)
    b.writeUInt32LE(1, at + 4)
  }
  return b
}

/** 1×1 lossless WebP (the sample from Google's WebP FAQ): Imgur's API refuses WebP. */
export function webp(): Buffer {
  return Buffer.from('UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==', 'base64')
}

/** The most common non-image an origin sends: an error page served with 200. */
export const HTML =
  '<!doctype html>\n<html><head><title>Not Found</title></head><body><h1>Not Found</h1></body></html>\n'
