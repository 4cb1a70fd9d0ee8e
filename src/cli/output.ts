/** What the command line shows: a redrawn progress bar on a terminal, plain lines elsewhere, and the report. */
import type { StatusDocument } from '../http/schemas.ts'

type Stream = { write(text: string): unknown; isTTY?: boolean; columns?: number }

const BAR_WIDTH = 30

export function counts(status: StatusDocument) {
  const { complete, failed } = status.uploaded
  const total = status.items.length
  const cancelled = status.items.filter((item) => item.reason?.code === 'cancelled').length
  return {
    total,
    done: complete.length + failed.length,
    uploaded: complete.length,
    failed: failed.length,
    cancelled,
  }
}

/**
 * On a terminal one line is redrawn in place (`\r`, then erase to its end); in a pipe or log a
 * line is written only when the counts change, so the output stays short and greppable.
 */
export function createProgress(stream: Stream) {
  let previous = ''
  let drawn = false
  return {
    update(status: StatusDocument): void {
      const { total, done, uploaded, failed } = counts(status)
      const text = `${done}/${total} done, ${uploaded} uploaded, ${failed} failed`
      if (text === previous) return
      previous = text
      if (!stream.isTTY) {
        stream.write(`progress: ${text}\n`)
        return
      }
      const width = Math.max(0, Math.min(BAR_WIDTH, (stream.columns || 80) - text.length - 4))
      const filled = total === 0 ? width : Math.round((done / total) * width)
      const bar = width > 0 ? `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ` : ''
      stream.write(`\r${bar}${text}\x1b[K`)
      drawn = true
    },
    /** Leaves the cursor on a fresh line, so what follows does not overwrite the bar. */
    end(): void {
      if (drawn) stream.write('\n')
    },
  }
}

/**
 * One line per URL, in submission order: `uploaded <url> -> <link>` or `failed   <url>: <reason>`;
 * then the album's line and the webhook's, when the job asked for them.
 */
export function formatReport(status: StatusDocument): string {
  const lines = status.items.map((item) => {
    if (item.state === 'complete') return `uploaded ${item.url} -> ${item.link}`
    if (item.state === 'failed') return `failed   ${item.url}: ${item.reason?.message} (${item.reason?.code})`
    return `pending  ${item.url}`
  })
  const { album, webhook } = status
  if (album?.state === 'complete') lines.push(`album    ${album.link}`)
  else if (album?.state === 'failed')
    lines.push(`album    failed: ${album.reason?.message} (${album.reason?.code})`)
  else if (album) lines.push('album    pending')
  if (webhook) {
    const tries = `${webhook.attempts} attempt${webhook.attempts === 1 ? '' : 's'}`
    const last = webhook.lastError ? `: ${webhook.lastError}` : ''
    if (webhook.state === 'delivered') lines.push(`webhook  delivered (${tries})`)
    else if (webhook.state === 'failed') lines.push(`webhook  failed after ${tries}${last}`)
    else if (webhook.attempts === 0) lines.push('webhook  pending (not tried yet)')
    else lines.push(`webhook  pending, the service retries (${tries} so far${last})`)
  }
  return lines.map((line) => `${line}\n`).join('')
}
