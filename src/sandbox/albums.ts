/**
 * Albums: `POST /3/album`, `GET /3/album/{id}` and the album page at `/a/{id}`.
 * https://apidocs.imgur.com/#8f89ae05-a470-4b38-8e3e-e8a5d87c3f5e and /work/shared/notes/imgur-api.md#albums
 * An album holds image ids; its images are looked up when it is read, so an image removed or
 * dropped since leaves its albums as it leaves Imgur's.
 */
import { type AuthFailure, type Caller, isFailure } from './auth.ts'
import type { ImageStore } from './images.ts'
import type { Payer, RateLimits } from './rate-limits.ts'
import { type Call, classicError, json, MESSAGES, type Reply, randomAlnum } from './replies.ts'
import { type FieldValue, parseFieldLists } from './upload-body.ts'

export type AlbumRecord = Readonly<{
  id: string
  /** Only anonymous albums get one: an account changes its albums through its token. */
  deletehash: string | undefined
  /** The images it was made with, in order, each once. */
  imageIds: readonly string[]
  /** The fields that named them: `ids[]` (an account's own images), `deletehashes[]`, or both. */
  fields: ReadonlyArray<'ids' | 'deletehashes'>
  title: string | undefined
  description: string | undefined
  privacy: Privacy | undefined
  /** The `cover` asked for, when it is one of the album's images. */
  cover: string | undefined
  auth: 'client-id' | 'bearer'
  clientId: string
  accountId?: number
  link: string
  datetime: number
}>

export const PRIVACY = ['public', 'hidden', 'secret'] as const
type Privacy = (typeof PRIVACY)[number]

/** What one album costs beyond its images' ids: its record and map entries. */
export const ALBUM_OVERHEAD_BYTES = 1024
/** One image id in an album's list, counted generously (a 7-character string and its slot). */
export const ALBUM_IMAGE_BYTES = 64

/**
 * Albums by id, at most `maxBytes` of them (see `albumCost`): a new album drops the oldest ones
 * first, whose pages and reads then answer 404 as Imgur's deleted albums do.
 */
export function createAlbumStore(random: () => number, maxBytes: number) {
  // Insertion order is creation order: the first entry is the oldest album.
  const byId = new Map<string, { record: AlbumRecord; cost: number }>()
  let storedBytes = 0

  function unique(length: number, taken: (key: string) => boolean): string {
    for (let attempt = 0; ; attempt += 1) {
      const key = randomAlnum(length, attempt < 5 ? random : Math.random)
      if (!taken(key)) return key
    }
  }

  return {
    /** A fresh album id (error messages name the album a refused request would have made). */
    newId: () => unique(7, (key) => byId.has(key)),
    newDeletehash: () => randomAlnum(15, random),
    fits: (cost: number) => cost <= maxBytes,
    add(record: AlbumRecord): void {
      const cost = albumCost(record)
      if (cost > maxBytes) throw new RangeError(`an album of ${record.imageIds.length} images cannot be kept`)
      for (const [id, oldest] of byId) {
        if (storedBytes + cost <= maxBytes) break
        byId.delete(id)
        storedBytes -= oldest.cost
      }
      byId.set(record.id, { record, cost })
      storedBytes += cost
    },
    get: (id: string): AlbumRecord | undefined => byId.get(id)?.record,
    get bytes(): number {
      return storedBytes
    },
    clear(): void {
      byId.clear()
      storedBytes = 0
    },
  }
}

export type AlbumStore = ReturnType<typeof createAlbumStore>

export function albumCost(album: {
  imageIds: readonly string[]
  title?: string | undefined
  description?: string | undefined
}): number {
  const text = (album.title?.length ?? 0) + (album.description?.length ?? 0)
  return ALBUM_OVERHEAD_BYTES + album.imageIds.length * ALBUM_IMAGE_BYTES + 2 * text
}

type Deps = {
  images: ImageStore
  albums: AlbumStore
  limits: RateLimits
  payerOf: (caller: Caller) => Payer
  baseUrl: string
  datetime: number
  /** Told of every album made (the sandbox's records). */
  made: (album: AlbumRecord) => void
}

/**
 * POST /3/album, priced like an upload: Imgur documents no price of its own for album calls, so the
 * sandbox charges 10 credits and one POST, which is what the service's budgets reserve for them.
 */
export async function albumReply(
  contentType: string | undefined,
  call: Call,
  caller: Caller | AuthFailure,
  body: Buffer,
  overflow: boolean,
  deps: Deps,
): Promise<Reply> {
  if (isFailure(caller)) return classicError(caller.status, caller.message, call)
  if (overflow) return classicError(413, 'Request Entity Too Large', call)
  const payer = deps.payerOf(caller)
  if (!deps.limits.canAffordUpload(payer)) return classicError(429, MESSAGES.rateLimited, call)
  const fields = (await parseFieldLists(contentType, body)) ?? new Map<string, FieldValue[]>()
  const { reply, album } = createAlbum(fields, caller, call, deps, () => deps.limits.spendUpload(payer))
  if (album !== undefined) deps.made(album)
  return reply
}

/**
 * Every value of `name[]` and `name`, a value also taken as a comma-separated list (Imgur: "ids=a,b
 * is the same as sending ids[]=a&ids[]=b").
 */
function listOf(fields: Map<string, FieldValue[]>, name: string): string[] {
  const values = [...(fields.get(`${name}[]`) ?? []), ...(fields.get(name) ?? [])]
  return values
    .flatMap((value) => (typeof value === 'string' ? value.split(',') : []))
    .map((value) => value.trim())
    .filter((value) => value !== '')
}

function textOf(fields: Map<string, FieldValue[]>, name: string): string | undefined {
  const value = fields.get(name)?.[0]
  return typeof value === 'string' && value !== '' ? value : undefined
}

/**
 * POST /3/album. Images are named by `ids[]` (only an account's own, with its Bearer token) or by
 * `deletehashes[]` (whoever holds an image's deletehash owns it); one the caller does not own
 * refuses the whole album with Imgur's 403. Without images the album is made empty, as Imgur does.
 */
function createAlbum(
  fields: Map<string, FieldValue[]>,
  caller: Caller,
  call: Call,
  deps: Deps,
  /** Pays once the album is valid; false when a concurrent call spent the budget first. */
  pay: () => boolean,
): { reply: Reply; album?: AlbumRecord } {
  const { images, albums } = deps
  const privacy = textOf(fields, 'privacy')
  if (privacy !== undefined && !(PRIVACY as readonly string[]).includes(privacy)) {
    return {
      reply: classicError(400, `Invalid privacy setting, expected one of ${PRIVACY.join(', ')}`, call),
    }
  }
  const id = albums.newId()
  const ids = listOf(fields, 'ids')
  const deletehashes = listOf(fields, 'deletehashes')
  // Imgur's words when adding an image one does not own (seen on /3/album/{id}/add).
  const notOwner = {
    reply: classicError(403, `You must own all the image ids to add them to album ${id}`, call),
  }
  const imageIds = new Set<string>()
  for (const imageId of ids) {
    const record = images.record(imageId)
    const own = caller.auth === 'bearer' && record?.auth === 'bearer' && record.accountId === caller.accountId
    if (!own) return notOwner
    imageIds.add(imageId)
  }
  for (const deletehash of deletehashes) {
    const imageId = images.idOf(deletehash)
    if (imageId === undefined) return notOwner
    imageIds.add(imageId)
  }
  const bearer = caller.auth === 'bearer'
  const record: AlbumRecord = Object.freeze({
    id,
    deletehash: bearer ? undefined : albums.newDeletehash(),
    imageIds: Object.freeze([...imageIds]),
    fields: Object.freeze([
      ...(ids.length > 0 ? (['ids'] as const) : []),
      ...(deletehashes.length > 0 ? (['deletehashes'] as const) : []),
    ]),
    title: textOf(fields, 'title'),
    description: textOf(fields, 'description'),
    privacy: privacy as Privacy | undefined,
    cover: [...imageIds].find((imageId) => imageId === textOf(fields, 'cover')),
    auth: caller.auth,
    clientId: caller.clientId,
    ...(bearer ? { accountId: caller.accountId } : {}),
    link: `${deps.baseUrl}/a/${id}`,
    datetime: deps.datetime,
  })
  if (!albums.fits(albumCost(record))) {
    return { reply: classicError(400, `Too many images for one album (${imageIds.size})`, call) }
  }
  if (!pay()) return { reply: classicError(429, MESSAGES.rateLimited, call) }
  albums.add(record)
  // Imgur's answer is the "Basic" model: the id, and the deletehash that alone can change an anonymous album.
  const data = record.deletehash === undefined ? { id } : { id, deletehash: record.deletehash }
  return { reply: json(200, { data, success: true, status: 200 }), album: record }
}

/** GET /3/album/{id}: Imgur's Album model, its images in order. */
export function readAlbumReply(id: string, call: Call, deps: Pick<Deps, 'images' | 'albums'>): Reply {
  const album = deps.albums.get(id)
  if (album === undefined) return classicError(404, `Unable to find an album with the id, ${id}`, call)
  const images = albumImages(album, deps.images)
  const cover = images.find((image) => image.id === album.cover) ?? images[0]
  const data = {
    id: album.id,
    title: album.title ?? null,
    description: album.description ?? null,
    datetime: album.datetime,
    cover: (cover?.id as string | undefined) ?? null,
    cover_edited: null,
    cover_width: (cover?.width as number | undefined) ?? null,
    cover_height: (cover?.height as number | undefined) ?? null,
    account_url: album.auth === 'bearer' ? ((cover?.account_url as string | undefined) ?? null) : null,
    account_id: album.accountId ?? null,
    privacy: album.privacy ?? (album.auth === 'bearer' ? 'hidden' : 'public'),
    layout: 'blog',
    views: 0,
    link: album.link,
    favorite: false,
    nsfw: null,
    section: null,
    images_count: images.length,
    in_gallery: false,
    is_ad: false,
    include_album_ads: false,
    is_album: true,
    images,
  }
  return json(200, { data, success: true, status: 200 })
}

/** The album's images still kept, in album order (as `GET /3/image/{id}` shows each). */
export function albumImages(album: AlbumRecord, images: ImageStore): Array<Record<string, unknown>> {
  return album.imageIds
    .map((imageId) => images.data(imageId))
    .filter((data): data is Record<string, unknown> => data !== undefined)
}
