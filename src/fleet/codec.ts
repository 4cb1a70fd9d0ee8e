/**
 * How a job looks in Redis: its meta as hash fields, each item as compact JSON in a list
 * (position = index). Short keys and omitted defaults keep a pending item to its URL and about
 * twenty bytes more; the scripts (scripts.ts) read and write the same shape.
 */
import type { AlbumResult } from '../jobs/contract.ts'
import {
  type Album,
  type Converted,
  type Item,
  itemBytes,
  type Job,
  type Outcome,
  type Reason,
  type Reencoded,
  type Webhook,
} from '../jobs/model.ts'

type StoredItem = {
  u: string
  /** The target, when it differs from the URL. */
  t?: string
  /** Absent while pending. */
  s?: 'c' | 'f'
  a?: number
  /** While pending: the bytes it counts in `pendingBytes` (`itemBytes`). */
  b?: number
  l?: string
  r?: Reason
  ru?: true
  i?: string
  d?: string
  cv?: Converted
  re?: Reencoded
}

export function encodeItem(item: Item): string {
  const stored: StoredItem = { u: item.url }
  if (item.target !== item.url) stored.t = item.target
  if (item.state === 'pending') stored.b = itemBytes(item)
  else stored.s = item.state === 'complete' ? 'c' : 'f'
  if (item.attempts > 0) stored.a = item.attempts
  return JSON.stringify({ ...stored, ...outcomeFields(item), r: item.reason && reasonFields(item.reason) })
}

/**
 * `cancelled`: the job's cancel reason, which an item still stored as pending failed with.
 * Nested objects are rebuilt in the model's key order: the scripts' cjson writes keys in any
 * order, and the status document's bytes must not depend on which store holds the job.
 */
export function decodeItem(raw: string, cancelled?: Reason): Item {
  const stored = JSON.parse(raw) as StoredItem
  const state = stored.s === 'c' ? 'complete' : stored.s === 'f' || cancelled ? 'failed' : 'pending'
  const { cv, re } = stored
  return {
    url: stored.u,
    target: stored.t ?? stored.u,
    state,
    attempts: stored.a ?? 0,
    link: stored.l,
    reason: stored.r
      ? reasonFields(stored.r)
      : stored.s === undefined && cancelled
        ? { ...cancelled }
        : undefined,
    reused: stored.ru === true,
    imageId: stored.i,
    deletehash: stored.d,
    converted: cv && { from: cv.from, to: cv.to },
    reencoded: re && { fromBytes: re.fromBytes, toBytes: re.toBytes },
  }
}

/** The item fields a successful attempt sets (JSON drops the undefined ones). */
export function outcomeFields(outcome: Partial<Outcome>): Partial<StoredItem> {
  return {
    l: outcome.link,
    ru: outcome.reused === true ? true : undefined,
    i: outcome.imageId,
    d: outcome.deletehash,
    cv: outcome.converted && { from: outcome.converted.from, to: outcome.converted.to },
    re: outcome.reencoded && { fromBytes: outcome.reencoded.fromBytes, toBytes: outcome.reencoded.toBytes },
  }
}

export function reasonFields(reason: Reason): Reason {
  return { code: reason.code, message: reason.message }
}

/**
 * Album and webhook JSON keep a key whose value is undefined as null (Object.assign in the
 * model leaves such keys, e.g. an album's `deletehash` for a reused upload), so a job read back
 * equals the memory store's.
 */
export function withUndefined(value: object): string {
  return JSON.stringify(value, (_key, field: unknown) => (field === undefined ? null : field))
}

function withoutNull<T>(json: string): T {
  const parsed = JSON.parse(json) as Record<string, unknown>
  return Object.fromEntries(Object.entries(parsed).map(([key, field]) => [key, field ?? undefined])) as T
}

function decodeAlbum(json: string): Album {
  const album = withoutNull<Album>(json)
  return album.reason === undefined ? album : { ...album, reason: reasonFields(album.reason) }
}

export function albumFields(result: AlbumResult): string {
  if ('reason' in result) return withUndefined({ state: 'failed', reason: reasonFields(result.reason) })
  return withUndefined({ state: 'complete', link: result.link, id: result.id, deletehash: result.deletehash })
}

/** The job's meta as hash field/value pairs (absent values omitted). */
export function encodeMeta(job: Job): string[] {
  const fields: [string, string | undefined][] = [
    ['created', String(job.created)],
    ['finished', job.finished === undefined ? undefined : String(job.finished)],
    ['clientId', job.clientId],
    ['owner', job.owner],
    ['started', job.started ? '1' : '0'],
    ['pending', String(job.pending)],
    ['version', String(job.version)],
    ['album', job.album && withUndefined(job.album)],
    ['webhook', job.webhook && withUndefined(job.webhook)],
  ]
  return fields.flatMap(([field, value]) => (value === undefined ? [] : [field, value]))
}

/** Positions of the items stored as pending: after a cancel, the ones it failed. */
export function storedPending(items: readonly string[]): number[] {
  return items.flatMap((raw, index) => ((JSON.parse(raw) as StoredItem).s === undefined ? [index] : []))
}

export function decodeJob(id: string, meta: Record<string, string>, items: readonly string[]): Job {
  const cancelled = meta.cancelled === undefined ? undefined : (JSON.parse(meta.cancelled) as Reason)
  return {
    id,
    created: Number(meta.created),
    finished: meta.finished === undefined ? undefined : Number(meta.finished),
    clientId: meta.clientId,
    owner: meta.owner,
    items: items.map((raw) => decodeItem(raw, cancelled)),
    started: meta.started === '1',
    pending: Number(meta.pending),
    album: meta.album === undefined ? undefined : decodeAlbum(meta.album),
    webhook: meta.webhook === undefined ? undefined : withoutNull<Webhook>(meta.webhook),
    version: Number(meta.version),
  }
}

/** HGETALL as a script returns it (field, value, field, value…) into a record. */
export function pairs(flat: readonly string[]): Record<string, string> {
  const record: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i] as string] = flat[i + 1] as string
  return record
}
