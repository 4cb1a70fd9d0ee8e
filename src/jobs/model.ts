/**
 * Jobs and items: plain data and the only functions that change them. Every item is in exactly
 * one of the API's lists at every moment; a job's counters are kept in step so that reading a
 * status never scans more than the job itself.
 */
import { randomUUID } from 'node:crypto'

export type ItemState = 'pending' | 'complete' | 'failed'
export type JobStatus = 'pending' | 'in-progress' | 'complete'
export type Reason = { code: string; message: string }
/** The image was converted to a format Imgur takes (MIME types). */
export type Converted = { from: string; to: string }
/** The image was re-encoded to fit Imgur's byte cap. */
export type Reencoded = { fromBytes: number; toBytes: number }

export type Item = {
  /** The URL as submitted (what the API lists). */
  readonly url: string
  /** The normalised URL that is downloaded (the same string when they agree). */
  readonly target: string
  state: ItemState
  attempts: number
  link: string | undefined
  reason: Reason | undefined
  /** Set once the worker found these bytes already uploaded, and no quota was spent. */
  reused: boolean
  /** Imgur's id of the image (albums of account uploads list images by id). */
  imageId: string | undefined
  /** Kept for reused links too (an anonymous album needs every image's); shown only for own uploads. */
  deletehash: string | undefined
  converted: Converted | undefined
  reencoded: Reencoded | undefined
}

/** An Imgur album asked for with the job, made once every item has settled. */
export type Album = {
  readonly title: string | undefined
  readonly description: string | undefined
  state: 'pending' | 'complete' | 'failed'
  link?: string
  id?: string
  deletehash?: string
  reason?: Reason
}

/** The job's webhook: where it goes (never shown) and how its delivery went. */
export type Webhook = {
  readonly url: string
  state: 'pending' | 'delivered' | 'failed'
  attempts: number
  lastError?: string
}

export type Job = {
  readonly id: string
  readonly created: number
  finished: number | undefined
  /** The job's own Imgur client id, when it brought one. Never serialised or logged. */
  readonly clientId: string | undefined
  /** The API key name that submitted the job; undefined when API keys are off. */
  readonly owner: string | undefined
  readonly items: Item[]
  started: boolean
  pending: number
  album: Album | undefined
  webhook: Webhook | undefined
  /** Bumped on every change of what the status document shows (caches key on it). */
  version: number
}

export type JobOptions = {
  clientId?: string | undefined
  owner?: string | undefined
  album?: { title?: string | undefined; description?: string | undefined } | undefined
  webhookUrl?: string | undefined
}

export function createJob(
  urls: readonly string[],
  targets: readonly string[],
  { clientId, owner, album, webhookUrl }: JobOptions = {},
  now = Date.now(),
): Job {
  const items = urls.map((url, index): Item => {
    const target = targets[index] ?? url
    return {
      url,
      target: target === url ? url : target,
      state: 'pending',
      attempts: 0,
      link: undefined,
      reason: undefined,
      reused: false,
      imageId: undefined,
      deletehash: undefined,
      converted: undefined,
      reencoded: undefined,
    }
  })
  return {
    id: randomUUID(),
    created: now,
    finished: undefined,
    clientId,
    owner,
    items,
    started: false,
    pending: items.length,
    album: album && { title: album.title, description: album.description, state: 'pending' },
    webhook: webhookUrl === undefined ? undefined : { url: webhookUrl, state: 'pending', attempts: 0 },
    version: 0,
  }
}

/** A job's own object and arrays, before its items (measured on V8; see README, "Memory budget"). */
export const JOB_OVERHEAD_BYTES = 400
/** An item's object and its share of the cached status document, before the strings it holds. */
export const ITEM_OVERHEAD_BYTES = 360

/** Bytes of a string in V8's heap: one a character, two when any is outside Latin-1. */
function stringBytes(text: string | undefined): number {
  if (text === undefined) return 0
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the Latin-1 range starts at U+0000
  return /[^\u0000-\u00ff]/.test(text) ? text.length * 2 : text.length
}

/**
 * What an item keeps in memory, roughly: its object and its strings, each counted twice (the
 * status document cached for reads repeats them). Retention and admission budgets add these up.
 */
export function itemBytes(item: Item): number {
  const strings =
    stringBytes(item.url) +
    (item.target === item.url ? 0 : stringBytes(item.target)) +
    stringBytes(item.link) +
    stringBytes(item.deletehash) +
    stringBytes(item.reason?.code) +
    stringBytes(item.reason?.message)
  return ITEM_OVERHEAD_BYTES + 2 * strings
}

/** Every item has settled; the job is complete unless its album is still being made. */
export function jobStatus(job: {
  readonly pending: number
  readonly started: boolean
  readonly album: { readonly state: Album['state'] } | undefined
}): JobStatus {
  if (job.pending === 0 && job.album?.state !== 'pending') return 'complete'
  return job.started ? 'in-progress' : 'pending'
}

export function startItem(job: Job, item: Item): void {
  if (item.state !== 'pending') throw new Error(`cannot start an item that is ${item.state}`)
  job.started = true
  job.version += 1
  item.attempts += 1
}

/**
 * What one successful attempt achieved. `deletehash` is Imgur's only handle to take an anonymous
 * upload down (absent when reused); `converted`/`reencoded` say what was done to the bytes.
 */
export type Outcome = {
  link: string
  reused: boolean
  imageId?: string | undefined
  deletehash?: string | undefined
  converted?: Converted | undefined
  reencoded?: Reencoded | undefined
}

export function completeItem(job: Job, item: Item, outcome: Outcome, now = Date.now()): void {
  settle(job, item, now)
  item.state = 'complete'
  item.link = outcome.link
  item.reused = outcome.reused
  item.imageId = outcome.imageId
  item.deletehash = outcome.deletehash
  item.converted = outcome.converted
  item.reencoded = outcome.reencoded
}

export function failItem(job: Job, item: Item, reason: Reason, now = Date.now()): void {
  settle(job, item, now)
  item.state = 'failed'
  item.reason = reason
}

function settle(job: Job, item: Item, now: number): void {
  if (item.state !== 'pending') throw new Error(`item already ${item.state}`)
  job.started = true
  job.version += 1
  job.pending -= 1
  if (jobStatus(job) === 'complete') job.finished = now
}

/** The album was made (or could not be): the job is complete. */
export function settleAlbum(
  job: Job,
  result: { link: string; id: string; deletehash?: string | undefined } | { reason: Reason },
  now = Date.now(),
): void {
  const { album } = job
  if (album?.state !== 'pending') throw new Error('no album is pending')
  if (job.pending !== 0) throw new Error('the album waits for every item to settle')
  if ('reason' in result) Object.assign(album, { state: 'failed', reason: result.reason })
  else
    Object.assign(album, {
      state: 'complete',
      link: result.link,
      id: result.id,
      deletehash: result.deletehash,
    })
  job.version += 1
  job.finished = now
}
