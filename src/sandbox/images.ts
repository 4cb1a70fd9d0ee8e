import { createHash } from 'node:crypto'
import type { Caller } from './auth.ts'
import type { Format } from './formats.ts'
import { randomAlnum } from './replies.ts'

export type UploadRecord = Readonly<{
  id: string
  deletehash: string
  link: string
  type: string
  size: number
  sha256: string
  auth: 'client-id' | 'bearer'
  clientId?: string
  accountId?: number
  field: 'image' | 'video'
}>

type StoredImage = {
  record: UploadRecord
  bytes: Uint8Array
  data: Record<string, unknown>
}

export type NewImage = {
  field: 'image' | 'video'
  bytes: Uint8Array
  format: Format
  caller: Caller
  name: string | undefined
  title: string | undefined
  description: string | undefined
  baseUrl: string
  datetime: number
}

/**
 * What one stored image costs beyond its bytes: its answer object, record and map entries (V8
 * holds them in about 2 KiB). Counting it keeps many tiny images from growing memory unbounded.
 */
export const IMAGE_OVERHEAD_BYTES = 2048

/**
 * Uploaded images by id and deletehash; the bytes are kept so that links open. At most `maxBytes`
 * (bytes plus overhead) are kept: a new image drops the oldest ones first, whose links then answer
 * 404 as Imgur's removed images do.
 */
export function createImageStore(random: () => number, maxBytes: number) {
  // Insertion order is upload order: the first entry is the oldest image.
  const byId = new Map<string, StoredImage>()
  const idByDeletehash = new Map<string, string>()
  let storedBytes = 0

  const costOf = (size: number) => size + IMAGE_OVERHEAD_BYTES

  function drop(image: StoredImage): void {
    byId.delete(image.record.id)
    idByDeletehash.delete(image.record.deletehash)
    storedBytes -= costOf(image.bytes.length)
  }

  // An injected random may repeat itself: after a few collisions, Math.random takes over.
  function unique(length: number, taken: (key: string) => boolean): string {
    for (let attempt = 0; ; attempt += 1) {
      const key = randomAlnum(length, attempt < 5 ? random : Math.random)
      if (!taken(key)) return key
    }
  }

  function add(image: NewImage): { record: UploadRecord; data: Record<string, unknown> } {
    const cost = costOf(image.bytes.length)
    if (cost > maxBytes) throw new RangeError(`an image of ${image.bytes.length} bytes cannot be kept`)
    for (const oldest of byId.values()) {
      if (storedBytes + cost <= maxBytes) break
      drop(oldest)
    }
    const id = unique(7, (key) => byId.has(key))
    const deletehash = unique(15, (key) => idByDeletehash.has(key))
    const { format, caller, baseUrl } = image
    const video = image.field === 'video'
    const link = `${baseUrl}/${id}.${format.ext}`
    const bearer = caller.auth === 'bearer'
    // Field order follows a real 2023 upload answer.
    const data: Record<string, unknown> = {
      id,
      deletehash,
      account_id: bearer ? caller.accountId : null,
      account_url: bearer ? caller.username : null,
      ad_type: null,
      ad_url: null,
      title: image.title ?? null,
      description: image.description ?? null,
      name: image.name ?? '',
      type: format.type,
      width: format.width,
      height: format.height,
      size: image.bytes.length,
      views: 0,
      section: null,
      vote: null,
      bandwidth: 0,
      animated: format.animated,
      favorite: false,
      in_gallery: false,
      in_most_viral: false,
      has_sound: false,
      is_ad: false,
      nsfw: null,
      link,
      tags: [],
      datetime: image.datetime,
      mp4: video ? link : '',
      hls: video ? `${baseUrl}/${id}.m3u8` : '',
      gifv: video ? `${baseUrl}/${id}.gifv` : '',
    }
    // Transcoding is asynchronous on Imgur: the upload answer says pending, later reads say completed.
    if (video)
      Object.assign(data, { mp4_size: image.bytes.length, looping: true, processing: { status: 'pending' } })
    const record: UploadRecord = Object.freeze({
      id,
      deletehash,
      link,
      type: format.type,
      size: image.bytes.length,
      sha256: createHash('sha256').update(image.bytes).digest('hex'),
      auth: caller.auth,
      clientId: caller.clientId,
      ...(bearer ? { accountId: caller.accountId } : {}),
      field: image.field,
    })
    // Only the upload answer carries the deletehash: whoever reads the image later cannot delete it.
    const stored = structuredClone(
      Object.fromEntries(Object.entries(data).filter(([key]) => key !== 'deletehash')),
    )
    if (video) stored.processing = { status: 'completed' }
    byId.set(id, { record, bytes: image.bytes, data: stored })
    idByDeletehash.set(deletehash, id)
    storedBytes += cost
    return { record, data }
  }

  return {
    add,
    /** Whether an image of `size` bytes can be kept at all (dropping every other one if need be). */
    fits(size: number): boolean {
      return costOf(size) <= maxBytes
    },
    get bytes(): number {
      return storedBytes
    },
    data(id: string): Record<string, unknown> | undefined {
      return byId.get(id)?.data
    },
    record(id: string): UploadRecord | undefined {
      return byId.get(id)?.record
    },
    /** The id of the image `deletehash` deletes, while it is kept. */
    idOf(deletehash: string): string | undefined {
      return idByDeletehash.get(deletehash)
    },
    /** The bytes behind a link: its own extension, and `.mp4` for any video. */
    file(id: string, ext: string): { type: string; bytes: Uint8Array } | undefined {
      const image = byId.get(id)
      if (image === undefined) return undefined
      const ownExt = image.record.link.slice(image.record.link.lastIndexOf('.') + 1)
      if (ext !== ownExt && !(ext === 'mp4' && image.record.field === 'video')) return undefined
      return { type: image.record.type, bytes: image.bytes }
    },
    remove(deletehash: string): boolean {
      const image = byId.get(idByDeletehash.get(deletehash) ?? '')
      if (image === undefined) return false
      drop(image)
      return true
    },
    clear(): void {
      byId.clear()
      idByDeletehash.clear()
      storedBytes = 0
    },
  }
}

export type ImageStore = ReturnType<typeof createImageStore>
