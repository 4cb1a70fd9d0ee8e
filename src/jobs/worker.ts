/**
 * The worker: one attempt at one item — download, identify, upload — returning the link.
 * The same bytes are uploaded once per service lifetime: a later item whose download hashes to
 * bytes already uploaded (or being uploaded) reuses that link without spending Imgur quota.
 */
import { createHash } from 'node:crypto'
import type { Downloader } from '../download/download.ts'
import type { ImgurClient } from '../imgur/client.ts'
import type { Item, Job } from './model.ts'

export type WorkerDeps = {
  downloader: Downloader
  imgur: ImgurClient
  /** sha256 of uploaded bytes → their link; a pending upload is held as its promise. */
  uploads: Map<string, string | Promise<string>>
}

/** `deletehash` is Imgur's only handle to take an anonymous upload down; absent when reused. */
export type Outcome = { link: string; reused: boolean; deletehash?: string }

export async function processItem(
  deps: WorkerDeps,
  job: Job,
  item: Item,
  signal: AbortSignal,
  downloaded: () => void = () => {},
): Promise<Outcome> {
  // The host's download slot is freed as soon as the bytes are in, before the upload.
  const image = await deps.downloader.download(item.target, signal).finally(downloaded)
  const hash = createHash('sha256').update(image.bytes).digest('base64url')
  const known = deps.uploads.get(hash)
  if (known !== undefined) {
    const link = await known
    return { link, reused: true }
  }
  const upload = deps.imgur.upload({
    bytes: image.bytes,
    mime: image.mime,
    filename: `image.${image.ext}`,
    clientId: job.clientId,
    signal,
  })
  const shared = upload.then((uploaded) => uploaded.link)
  // Items waiting on the same bytes see the failure; with none waiting it must not go unhandled.
  shared.catch(() => {})
  deps.uploads.set(hash, shared)
  try {
    const { link, deletehash } = await upload
    deps.uploads.set(hash, link)
    return { link, reused: false, deletehash }
  } catch (error) {
    deps.uploads.delete(hash)
    throw error
  }
}
