/**
 * The pipeline's parts — downloader, preparer, the Imgur client that uploads, the de-duplication
 * table — running in the calling thread: pipeline-thread.ts's, or the main thread's when a test
 * injects what cannot cross into a thread (see pipeline.ts).
 */
import { createPreparer } from '../convert/prepare.ts'
import { createDownloader } from '../download/download.ts'
import { createImgurClient } from '../imgur/client.ts'
import type { Away } from './contract.ts'
import type { Outcome } from './model.ts'
import { imgurOptions, type PipelineLinks, type PipelineSettings, USER_AGENT } from './pipeline.ts'
import { Uploads } from './uploads.ts'
import { processItem, type WorkerDeps, type WorkItem } from './worker.ts'

export function inlinePipeline(
  settings: PipelineSettings,
  links: PipelineLinks,
): {
  work(item: WorkItem, signal: AbortSignal, downloaded: () => void, away?: Away): Promise<Outcome>
  close(): Promise<void>
} {
  const downloader =
    links.downloader ??
    createDownloader({
      // Past MAX_IMAGE_BYTES an image is only worth downloading when it may be converted or re-encoded.
      maxBytes:
        settings.convertUnsupported || settings.reencodeOversized
          ? settings.maxDownloadBytes
          : settings.maxImageBytes,
      maxVideoBytes: settings.maxVideoBytes,
      videoTimeoutMs: settings.videoTimeoutMs,
      timeoutMs: settings.fetchTimeoutMs,
      maxRedirects: settings.maxRedirects,
      allowPrivateNetworks: settings.fetchAllowPrivateNetworks,
      userAgent: USER_AGENT,
      ownUrls: settings.publicUrl === undefined ? [] : [settings.publicUrl],
      ...(links.lookup && { lookup: links.lookup }),
    })
  const imgur = createImgurClient({ ...imgurOptions(settings), budgets: links.budgets })
  const preparer = createPreparer({
    maxImageBytes: settings.maxImageBytes,
    convertUnsupported: settings.convertUnsupported,
    reencodeOversized: settings.reencodeOversized,
    maxInputPixels: settings.maxInputPixels,
    concurrency: settings.convertConcurrency,
    timeoutMs: settings.convertTimeoutMs,
    ...(links.onLibvips && { onLibvips: links.onLibvips }),
  })
  const deps: WorkerDeps = {
    downloader,
    imgur,
    preparer,
    uploads: new Uploads(settings.dedupMaxEntries),
    ...(links.shared && { shared: links.shared }),
    itemTimeoutMs: settings.itemTimeoutMs,
    observe: links.observe,
  }
  return {
    work: (item, signal, downloaded, away) => processItem(deps, item, signal, downloaded, away),
    async close() {
      // A conversion past its deadline may still be winding down in libvips.
      await preparer.onIdle()
      await Promise.allSettled([downloader.close(), imgur.close()])
    },
  }
}
