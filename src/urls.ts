/** Validation and de-duplication of the URLs a job is submitted with. */
export const MAX_URL_LENGTH = 2048

export type UrlProblem = { index: number; reason: string }

/** What is wrong with one submitted URL (the download rules), or the parsed URL when nothing is. */
export function problemOf(entry: unknown): string | URL {
  if (typeof entry !== 'string') return `expected a string, got ${entry === null ? 'null' : typeof entry}`
  if (entry.length === 0) return 'empty string'
  if (entry.length > MAX_URL_LENGTH) return `longer than ${MAX_URL_LENGTH} characters`
  const url = URL.parse(entry)
  if (url === null) return 'not an absolute URL'
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `scheme ${url.protocol.slice(0, 16)} is not allowed (only http and https)`
  }
  if (url.username !== '' || url.password !== '') return 'credentials in URLs are not allowed'
  if (url.hostname === '') return 'missing host'
  return url
}

/**
 * Checks every entry and keeps the first occurrence of each distinct URL, in submission order.
 * Two URLs are the same when their WHATWG serialisations without the fragment are equal, so
 * `HTTPS://Example.com:443/a#x` and `https://example.com/a` are one image.
 * `urls` holds the URLs as submitted; `targets` the normalised form that is downloaded.
 */
export function parseSubmittedUrls(
  entries: readonly unknown[],
): { ok: true; urls: string[]; targets: string[] } | { ok: false; problems: UrlProblem[] } {
  const problems: UrlProblem[] = []
  const seen = new Set<string>()
  const urls: string[] = []
  const targets: string[] = []
  entries.forEach((entry, index) => {
    const result = problemOf(entry)
    if (typeof result === 'string') {
      problems.push({ index, reason: result })
      return
    }
    // The URL was parsed for checking and is ours: drop its fragment in place (one parse per entry).
    result.hash = ''
    const target = result.href
    if (seen.has(target)) return
    seen.add(target)
    urls.push(entry as string)
    targets.push(target)
  })
  return problems.length > 0 ? { ok: false, problems } : { ok: true, urls, targets }
}
