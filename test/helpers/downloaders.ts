/**
 * A fake origin and downloaders for one test file: started before its tests, closed after them.
 * The origin closes first, so a download still in flight fails instead of holding close().
 */
import { after, before } from 'node:test'
import { createDownloader, type DownloadOptions } from '../../src/download/download.ts'
import { type Origin, startOrigin } from './origin.ts'

export const TEST_USER_AGENT = 'imgur-upload-service/0.1 (+test)'

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
      return d
    },
  }
}
