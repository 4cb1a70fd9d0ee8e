/**
 * What a file's container says about how its pixels were coded, read from the bytes before any
 * decoding: a WebP's RIFF chunks (lossy VP8 or lossless VP8L) and a HEIF's item types (HEVC).
 */

/**
 * How a WebP's (first) image is coded: `VP8 ` is lossy, `VP8L` lossless. An extended file (`VP8X`)
 * lists its metadata and alpha (`ALPH`) chunks first; an animation keeps each frame's chunks
 * inside its `ANMF`. https://developers.google.com/speed/webp/docs/riff_container
 */
export function webpCoding(bytes: Buffer): 'lossy' | 'lossless' | undefined {
  if (
    bytes.length < 12 ||
    bytes.toString('latin1', 0, 4) !== 'RIFF' ||
    bytes.toString('latin1', 8, 12) !== 'WEBP'
  )
    return undefined
  return chunks(bytes, 12, Math.min(bytes.length, 8 + bytes.readUInt32LE(4)))
}

function chunks(bytes: Buffer, from: number, to: number): 'lossy' | 'lossless' | undefined {
  for (let at = from; at + 8 <= to; ) {
    const type = bytes.toString('latin1', at, at + 4)
    const size = bytes.readUInt32LE(at + 4)
    if (type === 'VP8 ') return 'lossy'
    if (type === 'VP8L') return 'lossless'
    // An animation frame: 16 bytes of position, size and timing, then the frame's own chunks.
    if (type === 'ANMF') return chunks(bytes, at + 8 + 16, Math.min(to, at + 8 + size))
    // Chunks are padded to an even size.
    at += 8 + size + (size % 2)
  }
  return undefined
}

/**
 * Whether a HEIF holds HEVC-coded images (`hvc1` items, ISO/IEC 23008-12), read from the `iinf`
 * box. The brand is no guide: libvips reports `heic` files as HEVC whatever their items are coded with.
 */
export function codedWithHevc(bytes: Buffer): boolean {
  const meta = child(bytes, 0, bytes.length, 'meta')
  const iinf = meta && child(bytes, meta.start + 4, meta.end, 'iinf')
  if (iinf === undefined) return false
  // A full box: version and flags, then the entry count (16 bits in version 0, else 32).
  let at = iinf.start + 4 + (bytes[iinf.start] === 0 ? 2 : 4)
  for (let infe = child(bytes, at, iinf.end, 'infe'); infe; infe = child(bytes, at, iinf.end, 'infe')) {
    // Versions 2 and 3: item ID (16 or 32 bits), protection index (16 bits), then the item type.
    const version = bytes[infe.start] ?? 0
    const type = infe.start + 4 + (version === 2 ? 2 : 4) + 2
    if (version >= 2 && type + 4 <= infe.end && bytes.toString('latin1', type, type + 4) === 'hvc1')
      return true
    at = infe.end
  }
  return false
}

/** The first box of `type` in [from, to): where its content starts and where it ends. */
function child(
  bytes: Buffer,
  from: number,
  to: number,
  type: string,
): { start: number; end: number } | undefined {
  for (let at = from; at + 8 <= to; ) {
    let size = bytes.readUInt32BE(at)
    let header = 8
    if (size === 1 && at + 16 <= to) {
      size = Number(bytes.readBigUInt64BE(at + 8))
      header = 16
    } else if (size === 0) size = to - at
    if (size < header) return undefined
    const end = Math.min(at + size, to)
    if (bytes.toString('latin1', at + 4, at + 8) === type) return { start: at + header, end }
    at = end
  }
  return undefined
}
