import { deflateSync } from 'node:zlib'
import { createSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/sandbox.ts'
import { chunk } from '../helpers/images.ts'

/** Tiny but valid files of every format the sandbox knows, built byte by byte. */

export function png(width = 3, height = 2, options: { animated?: boolean } = {}): Buffer {
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header.set([8, 2, 0, 0, 0], 8) // 8-bit RGB
  const rows = Buffer.alloc((width * 3 + 1) * height) // filter byte 0 + black pixels
  const actl = Buffer.alloc(8)
  actl.writeUInt32BE(1, 0)
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    ...(options.animated ? [chunk('acTL', actl)] : []),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

export function gif(width = 5, height = 4, frames = 1): Buffer {
  const screen = Buffer.from('GIF89a\0\0\0\0\x80\0\0', 'latin1') // global colour table of 2 entries
  screen.writeUInt16LE(width, 6)
  screen.writeUInt16LE(height, 8)
  const palette = Buffer.from([0, 0, 0, 255, 255, 255])
  const frame = Buffer.alloc(10)
  frame[0] = 0x2c
  frame.writeUInt16LE(width, 5)
  frame.writeUInt16LE(height, 7)
  const graphicControl = Buffer.from([0x21, 0xf9, 0x04, 0x00, 0x0a, 0x00, 0x00, 0x00])
  const pixels = Buffer.from([0x02, 0x02, 0x44, 0x01, 0x00]) // LZW min size 2, one sub-block, terminator
  const frameBytes = Buffer.concat([graphicControl, frame, pixels])
  return Buffer.concat([
    screen,
    palette,
    ...Array.from({ length: frames }, () => frameBytes),
    Buffer.from([0x3b]),
  ])
}

export function jpeg(width = 7, height = 6): Buffer {
  const app0 = Buffer.from([
    0xff,
    0xe0,
    0x00,
    0x10,
    ...Buffer.from('JFIF\0', 'latin1'),
    1,
    1,
    0,
    0,
    1,
    0,
    1,
    0,
    0,
  ])
  const sof0 = Buffer.from([0xff, 0xc0, 0x00, 0x0b, 0x08, 0, 0, 0, 0, 0x01, 0x01, 0x11, 0x00])
  sof0.writeUInt16BE(height, 5)
  sof0.writeUInt16BE(width, 7)
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof0, Buffer.from([0xff, 0xd9])])
}

export function bmp(width = 2, height = 3): Buffer {
  const rowBytes = Math.ceil((width * 3) / 4) * 4
  const file = Buffer.alloc(54 + rowBytes * height)
  file.write('BM', 0, 'latin1')
  file.writeUInt32LE(file.length, 2)
  file.writeUInt32LE(54, 10)
  file.writeUInt32LE(40, 14)
  file.writeInt32LE(width, 18)
  file.writeInt32LE(-height, 22) // top-down
  file.writeUInt16LE(1, 26)
  file.writeUInt16LE(24, 28)
  return file
}

export function tiff(width = 9, height = 8): Buffer {
  const file = Buffer.alloc(8 + 2 + 2 * 12 + 4)
  file.write('II*\0', 0, 'latin1')
  file.writeUInt32LE(8, 4)
  file.writeUInt16LE(2, 8)
  file.writeUInt16LE(256, 10) // ImageWidth, SHORT
  file.writeUInt16LE(3, 12)
  file.writeUInt32LE(1, 14)
  file.writeUInt16LE(width, 18)
  file.writeUInt16LE(257, 22) // ImageLength, LONG
  file.writeUInt16LE(4, 24)
  file.writeUInt32LE(1, 26)
  file.writeUInt32LE(height, 30)
  return file
}

function ftyp(brand: string): Buffer {
  const box = Buffer.alloc(24)
  box.writeUInt32BE(24, 0)
  box.write(`ftyp${brand}`, 4, 'latin1')
  box.write(`${brand}mp41`, 16, 'latin1')
  return Buffer.concat([box, Buffer.from([0, 0, 0, 8, ...Buffer.from('mdat', 'latin1')])])
}

export const mp4 = () => ftyp('isom')
export const mov = () => ftyp('qt  ')
export const heic = () => ftyp('heic')
export const webm = () => Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01])
export const webp = () =>
  Buffer.from('RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0\x10\x07\x10\x11\x11\x88\x88\xfe\x07\0', 'latin1')
export const htmlPage = () => Buffer.from('<!DOCTYPE html><html><body>not an image</body></html>')

export const CLIENT = 'Client-ID test-client'

/** A sandbox listening on 127.0.0.1:0, closed when the test ends. */
export async function start(
  t: { after: (fn: () => Promise<void>) => void },
  options?: SandboxOptions,
): Promise<{ sandbox: Sandbox; url: string }> {
  const sandbox = createSandbox(options)
  const url = await sandbox.listen()
  t.after(() => sandbox.close())
  return { sandbox, url }
}

/** Multipart upload of `bytes` in `field` with extra text fields; answers status, headers and parsed body. */
export async function upload(
  url: string,
  bytes: Uint8Array,
  options: { field?: string; path?: string; auth?: string | null; fields?: Record<string, string> } = {},
) {
  const form = new FormData()
  form.append(options.field ?? 'image', new Blob([new Uint8Array(bytes)]), 'upload.bin')
  for (const [key, value] of Object.entries(options.fields ?? {})) form.append(key, value)
  return post(url, options.path ?? '/3/image', form, options.auth)
}

export async function post(
  url: string,
  path: string,
  body: NonNullable<RequestInit['body']>,
  auth: string | null = CLIENT,
  headers = {},
) {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    body,
    headers: { ...(auth === null ? {} : { Authorization: auth }), ...headers },
  })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

/** Parsed answer bodies: the assertions, not the type, check their shape. */
// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary Imgur bodies
export type Json = any

export function jsonOf(text: string): Json {
  return JSON.parse(text)
}

export async function jsonBody(response: Response): Promise<Json> {
  return response.json()
}

/** The manual clock the budget and token tests move forward instead of sleeping. */
export function clock(start = Date.UTC(2025, 0, 1)) {
  let current = start
  return {
    now: () => current,
    advance(ms: number) {
      current += ms
    },
  }
}
