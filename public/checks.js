// The API's URL rules (src/urls.ts), repeated in the browser so mistakes show before sending.
// The server stays the authority: anything these checks miss comes back as its 400.

export const MAX_URL_LENGTH = 2048

/** The lines that will be sent, with their 1-based line numbers; blanks and `#` comments skipped. */
export function readLines(text) {
  const lines = []
  text.split(/\r?\n/).forEach((raw, index) => {
    const url = raw.trim()
    if (url !== '' && !url.startsWith('#')) lines.push({ url, line: index + 1 })
  })
  return lines
}

/** The reason a URL would be refused, or its parsed form. */
function problemOf(url) {
  if (url.length > MAX_URL_LENGTH) return `longer than ${MAX_URL_LENGTH} characters`
  let parsed
  try {
    parsed = new URL(url)
  } catch {
    return 'not an absolute URL'
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return `scheme ${parsed.protocol} is not allowed (only http and https)`
  }
  if (parsed.username !== '' || parsed.password !== '') return 'credentials in URLs are not allowed'
  if (parsed.hostname === '') return 'missing host'
  return parsed
}

/**
 * Sorts the lines into invalid ones and duplicates. Two URLs are duplicates when their WHATWG
 * serialisations without the fragment are equal, exactly as the server decides.
 */
export function checkLines(lines) {
  const seen = new Map()
  const invalid = []
  const duplicates = []
  for (const entry of lines) {
    const parsed = problemOf(entry.url)
    if (typeof parsed === 'string') {
      invalid.push({ ...entry, reason: parsed })
      continue
    }
    parsed.hash = ''
    const first = seen.get(parsed.href)
    if (first === undefined) seen.set(parsed.href, entry.line)
    else duplicates.push({ ...entry, first })
  }
  return { invalid, duplicates, unique: seen.size }
}
