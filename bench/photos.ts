/**
 * Realistic test material for the conversion phase, rendered here so `npm run bench` needs no
 * download: photographs (smooth light over the frame, fractal texture with the 1/f falloff of
 * natural scenes, objects with soft edges, sensor grain and a little lens blur) and the
 * graphics people also post (flat shapes, sharp edges, transparency). Rendering is deterministic
 * per seed; the encoded files are cached in the temporary folder, since AVIF at 4096 × 4096 takes
 * seconds to encode.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import sharp from 'sharp'

/** A small deterministic PRNG (mulberry32): the same seed renders the same picture. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

/** `cells` × `cells` random values, enlarged smoothly to `size`: one octave of fractal texture. */
async function octave(rand: () => number, cells: number, size: number, channels: 1 | 3): Promise<Buffer> {
  const small = Buffer.alloc(cells * cells * channels)
  for (let i = 0; i < small.length; i += 1) small[i] = Math.floor(rand() * 256)
  return sharp(small, { raw: { width: cells, height: cells, channels } })
    .resize(size, size, { kernel: 'cubic' })
    .toColourspace(channels === 1 ? 'b-w' : 'srgb')
    .raw()
    .toBuffer()
}

/** Hills, a sun, trees and stones as SVG: the edges and objects a photograph has. */
function scene(rand: () => number, size: number): string {
  const colour = (r: number, g: number, b: number) =>
    `rgb(${Math.round(r + rand() * 40)},${Math.round(g + rand() * 40)},${Math.round(b + rand() * 40)})`
  const shapes: string[] = []
  const horizon = size * (0.45 + rand() * 0.15)
  shapes.push(
    `<circle cx="${rand() * size}" cy="${horizon * (0.2 + rand() * 0.4)}" r="${size * 0.05}" fill="url(#sun)"/>`,
  )
  for (let layer = 0; layer < 3; layer += 1) {
    const base = horizon + layer * size * 0.08
    let path = `M0 ${size} L0 ${base}`
    for (let x = 0; x <= size; x += size / 16) path += ` L${x} ${base - rand() * size * 0.12}`
    shapes.push(
      `<path d="${path} L${size} ${size} Z" fill="${colour(40 + layer * 20, 70 + layer * 15, 40)}"/>`,
    )
  }
  for (let i = 0; i < 40; i += 1) {
    const x = rand() * size
    const y = horizon + rand() * (size - horizon)
    const scale = (y / size) * size * 0.06
    shapes.push(
      `<rect x="${x - scale * 0.08}" y="${y - scale}" width="${scale * 0.16}" height="${scale}" fill="${colour(60, 40, 20)}"/>`,
      `<ellipse cx="${x}" cy="${y - scale}" rx="${scale * 0.5}" ry="${scale * 0.7}" fill="${colour(30, 90, 30)}" fill-opacity="0.9"/>`,
    )
  }
  for (let i = 0; i < 25; i += 1) {
    const y = horizon + rand() * (size - horizon)
    shapes.push(
      `<ellipse cx="${rand() * size}" cy="${y}" rx="${(y / size) * size * 0.03}" ry="${(y / size) * size * 0.015}" fill="${colour(110, 105, 100)}"/>`,
    )
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">
<defs><radialGradient id="sun"><stop offset="0" stop-color="#fffbe0"/><stop offset="1" stop-color="#ffd070" stop-opacity="0"/></radialGradient></defs>
${shapes.join('\n')}</svg>`
}

/** Texture at six scales (cells across the frame), fine detail strong enough to survive lossy coding. */
const OCTAVE_CELLS = [8, 32, 128, 512, 1024, 2048]
const OCTAVE_WEIGHTS = [0.45, 0.25, 0.15, 0.12, 0.12, 0.1]
const GRAIN = 16
const SKY = [120, 160, 215]
const GROUND = [125, 115, 85]

/** A photograph of `size` × `size`, as 8-bit RGB pixels. */
export async function photograph(seed: number, size: number): Promise<Buffer> {
  const rand = random(seed)
  // Light: a sky-to-ground colour field, then texture whose amplitude halves as its scale halves.
  const light = await octave(rand, 4, size, 3)
  const octaves = await Promise.all(OCTAVE_CELLS.map((cells) => octave(rand, Math.min(cells, size), size, 1)))
  const objects = await sharp(Buffer.from(scene(rand, size)))
    .resize(size, size)
    .ensureAlpha()
    .raw()
    .toBuffer()
  // Clamped: what goes past black or white stays there, as in a camera.
  const pixels = new Uint8ClampedArray(size * size * 3)
  const texture = new Float32Array(size * size)
  OCTAVE_WEIGHTS.forEach((weight, o) => {
    const values = octaves[o] as Buffer
    for (let p = 0; p < texture.length; p += 1)
      texture[p] = (texture[p] as number) + ((values[p] as number) - 128) * weight
  })
  for (let y = 0, p = 0; y < size; y += 1) {
    const sky = 1 - y / size
    const base = SKY.map((top, c) => top * sky + (GROUND[c] as number) * (1 - sky))
    for (let x = 0; x < size; x += 1, p += 1) {
      const grain = texture[p] as number
      const alpha = (objects[p * 4 + 3] as number) / 255
      for (let c = 0; c < 3; c += 1) {
        const ground = (base[c] as number) + ((light[p * 3 + c] as number) - 128) * 0.35 + grain
        const object = (objects[p * 4 + c] as number) + grain * 0.6
        // Sensor grain, roughly gaussian (a sum of two uniform draws), softened by the lens blur after.
        const noise = (rand() + rand() - 1) * GRAIN
        pixels[p * 3 + c] = ground * (1 - alpha) + object * alpha + noise
      }
    }
  }
  return sharp(Buffer.from(pixels.buffer), { raw: { width: size, height: size, channels: 3 } })
    .blur(0.5)
    .raw()
    .toBuffer()
}

/** An illustration or a screenshot: flat colours, sharp edges, text-like strokes; see-through when asked. */
export function graphic(seed: number, width: number, height: number, transparent: boolean): Buffer {
  const rand = random(seed)
  const shapes: string[] = []
  if (!transparent) shapes.push(`<rect width="${width}" height="${height}" fill="#f4f5f7"/>`)
  for (let i = 0; i < 30; i += 1) {
    const hue = Math.floor(rand() * 360)
    const x = rand() * width
    const y = rand() * height
    const w = (0.05 + rand() * 0.3) * width
    const h = (0.05 + rand() * 0.3) * height
    shapes.push(
      i % 3 === 0
        ? `<circle cx="${x}" cy="${y}" r="${Math.min(w, h) / 2}" fill="hsl(${hue},70%,55%)"/>`
        : `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="${w * 0.05}" fill="hsl(${hue},60%,${40 + (i % 5) * 10}%)"/>`,
    )
  }
  for (let line = 0; line < 60; line += 1) {
    const y = (line + 1) * (height / 62)
    let x = width * 0.05
    while (x < width * 0.9) {
      const w = 20 + rand() * 120
      shapes.push(
        `<rect x="${x}" y="${y}" width="${w}" height="${height / 160}" fill="#333" fill-opacity="0.85"/>`,
      )
      x += w + 25
    }
  }
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes.join('')}</svg>`,
  )
}

export type Kind = 'webp' | 'avif' | 'webp-alpha' | 'webp-lossless' | 'webp-lossless-alpha' | 'heic'
export type Material = { name: string; kind: Kind; mime: string; bytes: Buffer }

/** How many of each kind a run converts: mostly large photographs, a few graphics, the HEIC fixture. */
export function mix(photos: number): Array<{ kind: Kind; seed: number }> {
  const list: Array<{ kind: Kind; seed: number }> = []
  for (let i = 0; i < photos; i += 1) list.push({ kind: 'webp', seed: 100 + i })
  for (let i = 0; i < Math.max(1, Math.round(photos / 4)); i += 1) list.push({ kind: 'avif', seed: 200 + i })
  list.push(
    { kind: 'heic', seed: 0 },
    { kind: 'webp-alpha', seed: 300 },
    { kind: 'webp-lossless', seed: 400 },
    { kind: 'webp-lossless-alpha', seed: 500 },
  )
  return list
}

const SIZE = 4096
const MIME: Record<Kind, string> = {
  webp: 'image/webp',
  'webp-alpha': 'image/webp',
  'webp-lossless': 'image/webp',
  'webp-lossless-alpha': 'image/webp',
  avif: 'image/avif',
  heic: 'image/heic',
}

/** One base picture is rendered for two seeds: the odd one shows it mirrored, in other colours. */
let rendered: { base: number; pixels: Buffer } | undefined
async function photo(seed: number, size = SIZE) {
  const base = Math.floor(seed / 2)
  if (rendered?.base !== base || rendered.pixels.length !== size * size * 3)
    rendered = { base, pixels: await photograph(base, size) }
  const image = sharp(rendered.pixels, { raw: { width: size, height: size, channels: 3 } })
  return seed % 2 === 1 ? image.flop().modulate({ hue: 40 }) : image
}

async function render(kind: Kind, seed: number): Promise<Buffer> {
  switch (kind) {
    case 'webp':
      return (await photo(seed)).webp({ quality: 82 }).toBuffer()
    case 'avif':
      return (await photo(seed)).avif({ quality: 60, effort: 2 }).toBuffer()
    case 'webp-alpha': {
      // A cut-out: the photograph inside a soft-edged ellipse, transparent around it.
      const size = SIZE / 2
      const mask = await sharp(
        Buffer.from(
          `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><ellipse cx="${size / 2}" cy="${size / 2}" rx="${size * 0.45}" ry="${size * 0.35}" fill="#fff"/></svg>`,
        ),
      )
        .blur(8)
        .extractChannel(3)
        .raw()
        .toBuffer()
      return (await photo(seed, size))
        .joinChannel(mask, { raw: { width: size, height: size, channels: 1 } })
        .webp({ quality: 82 })
        .toBuffer()
    }
    case 'webp-lossless':
      return sharp(graphic(seed, 3840, 2160, false))
        .webp({ lossless: true })
        .toBuffer()
    case 'webp-lossless-alpha':
      return sharp(graphic(seed, 2048, 2048, true))
        .webp({ lossless: true })
        .toBuffer()
    case 'heic':
      // sharp's libheif has no HEVC encoder: the repository's real 3-megapixel HEVC fixture.
      return readFileSync(new URL('../test/fixtures/photo-3mp.heic', import.meta.url))
  }
}

/** Bump when the rendering changes, so stale cached files are not reused. */
const VERSION = 1

/** Renders (or reads from the cache) every file of the mix. */
export async function materials(photos: number, log: (message: string) => void): Promise<Material[]> {
  const dir = join(tmpdir(), `imgur-bench-photos-v${VERSION}`)
  mkdirSync(dir, { recursive: true })
  const out: Material[] = []
  for (const { kind, seed } of mix(photos)) {
    const name = `${kind}-${seed}.${MIME[kind].split('/')[1]}`
    const file = join(dir, name)
    if (!existsSync(file)) {
      const started = performance.now()
      const bytes = await render(kind, seed)
      writeFileSync(`${file}.part`, bytes)
      renameSync(`${file}.part`, file)
      log(
        `rendered ${name} (${(bytes.length / 2 ** 20).toFixed(1)} MiB) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      )
    }
    out.push({ name, kind, mime: MIME[kind], bytes: readFileSync(file) })
  }
  return out
}

/**
 * The same picture in distinct bytes for each round (the service uploads identical bytes only
 * once): bytes a decoder skips, appended where the format allows them. A HEIF gets a `free` box
 * after its last one; a WebP an unknown chunk inside its RIFF (its size field updated), which
 * libwebp ignores.
 */
export function variant(material: Material, round: number): Buffer {
  const tag = Buffer.from(`bench round ${String(round).padStart(6, '0')}`, 'latin1')
  const { bytes } = material
  if (material.mime === 'image/webp') {
    const chunk = Buffer.alloc(8 + tag.length + (tag.length % 2))
    chunk.write('bNch', 0, 'latin1')
    chunk.writeUInt32LE(tag.length, 4)
    tag.copy(chunk, 8)
    const out = Buffer.concat([bytes, chunk])
    out.writeUInt32LE(out.length - 8, 4)
    return out
  }
  const box = Buffer.alloc(8 + tag.length)
  box.writeUInt32BE(box.length, 0)
  box.write('free', 4, 'latin1')
  tag.copy(box, 8)
  return Buffer.concat([bytes, box])
}
