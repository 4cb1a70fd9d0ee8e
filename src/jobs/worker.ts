/**
 * The worker: one attempt at one item — download, identify, prepare (convert or re-encode when
 * needed), upload — returning the link, all within one deadline (`itemTimeoutMs`). The same image
 * bytes are uploaded once per credential: a later item whose download hashes to bytes already
 * uploaded (or being prepared and uploaded) with the same credential reuses that link without
 * spending Imgur quota; if that other upload fails, the item makes its own attempt. In a fleet,
 * bytes this process has not seen are looked up in the fleet's table (`shared`) before uploading,
 * the item's transfer slot lent meanwhile (`away`), and every upload is told to it. Videos are
 * streamed from the origin to Imgur as they arrive, so their hash is only known once they are
 * sent: they are not de-duplicated, and their own deadline (VIDEO_TIMEOUT_MS) replaces the item's.
 */
import { createHash } from 'node:crypto'
import type { Prepared, Preparer } from '../convert/prepare.ts'
import type { Downloader, Opened } from '../download/download.ts'
import { ServiceError } from '../errors.ts'
import type { SharedUploads } from '../fleet/uploads.ts'
import type { ImgurClient, Uploaded } from '../imgur/client.ts'
import type { Sniffed } from '../media.ts'
import { raceSignal, startDeadline } from '../signals.ts'
import { formatDuration } from '../units.ts'
import type { Away, WorkInput } from './contract.ts'
import type { Outcome } from './model.ts'
import type { Known, Uploads } from './uploads.ts'

export type WorkerDeps = {
  downloader: Downloader
  imgur: Pick<ImgurClient, 'upload' | 'uploadVideo' | 'credentialKey'>
  preparer: Preparer
  /** Links of image bytes already uploaded (or being uploaded), per credential and content hash. */
  uploads: Uploads
  /** The fleet's table of the same (absent in memory mode): asked when `uploads` has nothing. */
  shared?: Pick<SharedUploads, 'get' | 'set'>
  /** Total deadline of one attempt at an image: download, conversion and upload together. */
  itemTimeoutMs: number
  /** Told of every finished download and upload (metrics). */
  observe?: (transfer: Transfer) => void
}

/** One download or upload that succeeded: how long it took and how many bytes it moved. */
export type Transfer = { phase: 'download' | 'upload'; seconds: number; bytes: number }

/** Runs `fn`, reporting its duration and `bytes(result)` as one transfer when it succeeds. */
async function timed<T>(
  deps: WorkerDeps,
  phase: Transfer['phase'],
  fn: () => Promise<T>,
  bytes: (r: T) => number,
) {
  const start = performance.now()
  const result = await fn()
  deps.observe?.({ phase, seconds: (performance.now() - start) / 1000, bytes: bytes(result) })
  return result
}

type Video = Extract<Opened, { kind: 'video' }>
type Image = Extract<Opened, { kind: 'file' }>

/** What the worker reads of an item: where to download it, and the credential to upload it with. */
export type WorkItem = Pick<WorkInput, 'target' | 'clientId'>

export async function processItem(
  deps: WorkerDeps,
  input: WorkItem,
  signal: AbortSignal,
  downloaded: () => void = () => {},
  away: Away = (fn) => fn(),
): Promise<Outcome> {
  const deadline = startDeadline(deps.itemTimeoutMs, signal)
  try {
    return await attempt(deps, input, deadline.signal, downloaded, away, () => deadline.disarm())
  } catch (error) {
    if (!deadline.timedOut || signal.aborted) throw error
    throw new ServiceError(
      'item_timeout',
      `downloading, converting and uploading this URL took longer than ${formatDuration(deps.itemTimeoutMs)}`,
      { retryable: true, cause: error },
    )
  } finally {
    deadline.clear()
  }
}

async function attempt(
  deps: WorkerDeps,
  input: WorkItem,
  signal: AbortSignal,
  downloaded: () => void,
  away: Away,
  isVideo: () => void,
): Promise<Outcome> {
  const opened = await timed(
    deps,
    'download',
    () => deps.downloader.open(input.target, signal),
    // A video's bytes are counted as they stream to Imgur, as its upload.
    (result) => (result.kind === 'video' ? 0 : result.bytes.length),
  ).catch((error: unknown) => {
    downloaded()
    throw error
  })
  // A video is still downloading while it uploads: the host's slot is held until both end.
  if (opened.kind === 'video') {
    isVideo()
    return uploadVideo(deps, input, opened, signal).finally(downloaded)
  }
  // The host's download slot is freed as soon as the bytes are in, before converting and uploading.
  downloaded()
  const outcome = await linkOf(deps, input, opened, signal, away)
  // Nothing reads the bytes again (a retry downloads anew): freed now, they do not wait with every
  // other item's for V8's next full collection (README, Performance). Not after a failure: an
  // upload cut short may still be writing them.
  opened.release()
  return outcome
}

/** The link of an image's bytes: the one already known for them (de-duplication), or a new upload's. */
async function linkOf(
  deps: WorkerDeps,
  input: WorkItem,
  opened: Image,
  signal: AbortSignal,
  away: Away,
): Promise<Outcome> {
  const { bytes } = opened
  const hash = `${deps.imgur.credentialKey(input.clientId)}:${createHash('sha256').update(bytes).digest('base64url')}`
  for (let known = deps.uploads.get(hash); known !== undefined; known = deps.uploads.get(hash)) {
    if (!(known instanceof Promise)) return { ...known, reused: true }
    try {
      return { ...(await raceSignal(known, signal)), reused: true }
    } catch {
      signal.throwIfAborted()
      // The other item's upload failed: its failure is its own, this item tries for itself.
      deps.uploads.forget(hash, known)
    }
  }

  const work = uploadOnce(deps, input, hash, opened, signal, away)
  const shared = work.then((done) => done.known)
  // Items waiting on the same bytes see the failure; with none waiting it must not go unhandled.
  shared.catch(() => {})
  deps.uploads.set(hash, shared)
  try {
    const { known, prepared } = await work
    deps.uploads.set(hash, known)
    if (!prepared) return { ...known, reused: true }
    const { converted, reencoded } = prepared
    return { ...known, reused: false, converted, reencoded }
  } catch (error) {
    deps.uploads.forget(hash, shared)
    throw error
  }
}

/** The link of these bytes: the fleet's when another replica uploaded them (no `prepared`), else a new upload's. */
async function uploadOnce(
  deps: WorkerDeps,
  input: WorkItem,
  hash: string,
  { bytes, type }: { bytes: Buffer; type: Sniffed },
  signal: AbortSignal,
  away: Away,
): Promise<{ known: Known; prepared?: Prepared }> {
  const { shared } = deps
  // Waiting for Redis is not a transfer: the item's slot serves another item meanwhile.
  const earlier =
    shared &&
    (await raceSignal(
      away(() => shared.get(hash)),
      signal,
    ))
  if (earlier) return { known: earlier }
  const prepared = await deps.preparer.prepare(bytes, type, signal)
  const upload = { bytes: prepared.bytes, mime: prepared.mime, filename: `image.${prepared.ext}` }
  const uploaded = await timed(
    deps,
    'upload',
    () => deps.imgur.upload({ ...upload, clientId: input.clientId, signal }),
    () => prepared.bytes.length,
  )
  const done = { known: known(uploaded), prepared }
  // Sharing is an optimisation: the item has its link whether or not the fleet hears of it.
  deps.shared?.set(hash, done.known).catch(() => {})
  return done
}

/** What de-duplication keeps of an upload: enough for a later item, and for an album, to use it. */
const known = ({ link, id, deletehash }: Uploaded): Known => ({ link, imageId: id, deletehash })

/** Streams the video to Imgur's `video` field; a failure on either side ends both (see VideoStream). */
async function uploadVideo(
  deps: WorkerDeps,
  input: WorkItem,
  video: Video,
  signal: AbortSignal,
): Promise<Outcome> {
  try {
    let sent = 0
    async function* counted(): AsyncGenerator<Buffer> {
      for await (const chunk of video.stream.chunks) {
        sent += chunk.length
        yield chunk
      }
    }
    const upload = { length: video.length, mime: video.type.mime, filename: `video.${video.type.ext}` }
    const uploaded = await timed(
      deps,
      'upload',
      () => deps.imgur.uploadVideo({ ...upload, chunks: counted(), clientId: input.clientId, signal }),
      () => sent,
    )
    return { ...known(uploaded), reused: false }
  } finally {
    // Imgur may answer (an error) before the whole body is sent: the origin connection is released.
    video.stream.cancel()
  }
}
