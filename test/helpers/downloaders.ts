/**
 * A fake origin and downloaders for one test file: started before its tests, closed after them.
 * The origin closes first, so a download still in flight fails instead of holding close().
 */
import { after, before } from 'node:test'
import { createDownloader, type Downloader, type DownloadOptions } from '../../src/download/download.ts'
import { ServiceError } from '../../src/errors.ts'
import { refusedImage } from '../../src/media.ts'
import { type Origin, startOrigin } from './origin.ts'

export const TEST_USER_AGENT = 'imgur-upload-service/0.1 (+test)'

/**
 * A downloader with `download()`: `open()` for a file Imgur's `image` field takes as is, failing
 * on anything else (a video, a format to convert). Most download tests only care about those.
 */
export function imageDownloads(d: Downloader) {
  return Object.assign(d, {
    async download(url: string, signal?: AbortSignal) {
      const opened = await d.open(url, signal)
      if (opened.kind === 'video') {
        opened.stream.cancel()
        throw new ServiceError('unsupported_format', `${opened.type.name} is a video, not an image`)
      }
      if (opened.type.kind === 'convertible') throw refusedImage(opened.type.name)
      return { bytes: opened.bytes, url: opened.url, mime: opened.type.mime, ext: opened.type.ext }
    },
  })
}

export function useDownloaders(base: DownloadOptions) {
  const state: { origin: Origin | undefined } = { origin: undefined }
  const downloaders: Array<{ close(): Promise<void> }> = []
  before(async () => {
    state.origin = await startOrigin()
  })
  after(async () => {
    await state.origin?.close()
    await Promise.all(downloaders.map((d) => d.close()))
  })
  return {
    get origin(): Origin {
      if (state.origin === undefined) throw new Error('the origin starts before the tests')
      return state.origin
    },
    downloader(overrides: Partial<DownloadOptions> = {}) {
      const d = createDownloader({ ...base, ...overrides })
      downloaders.push(d)
      return imageDownloads(d)
    },
  }
}

/** A downloader that never dials out: for tests about who may submit, not about downloads. */
export const offline: Downloader = {
  open: async (): Promise<never> => {
    throw new ServiceError('download_blocked', 'blocked: tests never dial out')
  },
  close: async () => {},
}
