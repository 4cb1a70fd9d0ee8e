// The page: check pasted URLs, submit them, follow each job over Server-Sent Events, and keep a
// gallery of everything uploaded. Plain DOM; text is only ever set with textContent.
// Every API request goes through api(), which sends the API key when the service wants one.
import { checkLines, readLines } from './checks.js'

const $ = (id) => document.getElementById(id)
const form = $('upload')
const urlsBox = $('urls')
const fileInput = $('file')
const clientIdBox = $('client-id')
const albumBox = $('album-title')
const submitButton = $('submit')
const errorBox = $('error')
const keyBox = $('api-key')
const keyError = $('api-key-error')
const MAX_FILE_BYTES = 4 * 1024 * 1024
const SHOWN_CHECKS = 10
const KEY_ITEM = 'imgur-upload:api-key'
const RECONNECT_MS = 3000

// The key lives in this tab's sessionStorage: it survives a reload, not the tab. Where storage is
// refused (some privacy settings throw on access) it lives in this page only.
let apiKey = ''
try {
  apiKey = sessionStorage.getItem(KEY_ITEM) ?? ''
} catch {}

function saveKey(value) {
  apiKey = value
  try {
    if (value === '') sessionStorage.removeItem(KEY_ITEM)
    else sessionStorage.setItem(KEY_ITEM, value)
  } catch {}
}

/** fetch() for the API: the key goes as `Authorization: Bearer` when one is set. */
function api(path, init = {}) {
  const headers = new Headers(init.headers)
  if (apiKey !== '') headers.set('authorization', `Bearer ${apiKey}`)
  return fetch(path, { ...init, headers })
}

/** After a 401: show the key field and say what is wrong; `focus` only when the person just acted. */
function askForKey(focus) {
  $('access').hidden = false
  keyError.textContent =
    apiKey === ''
      ? 'This service needs an API key: enter it here.'
      : 'The service refused this API key: check it, or ask for a new one.'
  keyError.hidden = false
  if (focus) keyBox.focus()
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props)
  node.append(...children)
  return node
}

function thumb(link, alt) {
  const img = element('img', { src: link, alt, loading: 'lazy', decoding: 'async' })
  return element('li', {}, element('a', { href: link, target: '_blank', rel: 'noopener', title: link }, img))
}

function current() {
  const lines = readLines(urlsBox.value)
  return { lines, ...checkLines(lines) }
}

function renderChecks() {
  const { lines, invalid, duplicates, unique } = current()
  const notes = [
    ...invalid.map((e) => element('li', { className: 'invalid' }, `line ${e.line}: ${e.reason}`)),
    ...duplicates.map((e) =>
      element(
        'li',
        { className: 'duplicate' },
        `line ${e.line} repeats line ${e.first}; it is uploaded once`,
      ),
    ),
  ]
  if (notes.length > SHOWN_CHECKS)
    notes.splice(SHOWN_CHECKS, Infinity, element('li', {}, `and ${notes.length - SHOWN_CHECKS} more`))
  $('checks').replaceChildren(...notes)
  urlsBox.setAttribute('aria-invalid', String(invalid.length > 0))
  const dupes = duplicates.length > 0 ? ` (${unique} different)` : ''
  $('count').textContent =
    lines.length === 0 ? '' : `${lines.length} URL${lines.length === 1 ? '' : 's'}${dupes}`
}

function appendText(text) {
  const before = urlsBox.value.replace(/\s*$/, '')
  urlsBox.value = before === '' ? text : `${before}\n${text}`
  renderChecks()
}

async function readFiles(files) {
  for (const file of files) {
    if (file.size > MAX_FILE_BYTES) showError({ message: `${file.name} is too large for a list of URLs.` })
    else appendText(await file.text())
  }
}

/** Shows an API error body: its message and code, plus each offending entry or field it names. */
function showError(body, lines = []) {
  const parts = [element('p', {}, element('strong', {}, body.message ?? 'Something went wrong.'))]
  if (body.error) parts[0].append(' ', element('code', {}, `(${body.error})`))
  const entries = [
    ...(body.details?.invalid ?? []).map((p) => {
      const sent = lines[p.index]
      return sent ? `line ${sent.line} (${sent.url}): ${p.reason}` : `URL #${p.index + 1}: ${p.reason}`
    }),
    ...(body.details?.problems ?? []).map((p) => `${p.path || 'body'}: ${p.problem}`),
  ]
  if (entries.length > 0) parts.push(element('ul', {}, ...entries.map((text) => element('li', {}, text))))
  errorBox.replaceChildren(...parts)
  errorBox.hidden = false
}

async function submit(event) {
  event.preventDefault()
  errorBox.hidden = true
  const { lines, invalid } = current()
  if (lines.length === 0) return showError({ message: 'Paste at least one image URL.' })
  if (invalid.length > 0) {
    urlsBox.focus()
    return showError({ message: 'Some lines are not URLs the service accepts; see the notes under the box.' })
  }
  const body = { urls: lines.map((entry) => entry.url) }
  if (clientIdBox.value.trim() !== '') body.clientId = clientIdBox.value.trim()
  const albumTitle = albumBox.value.trim()
  if (albumTitle !== '') body.album = { title: albumTitle }
  submitButton.disabled = true
  try {
    const response = await api('/v1/images/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    const answer = await response.json().catch(() => ({}))
    if (response.status === 401) return askForKey(true)
    if (response.status !== 202) {
      return showError({ message: `The service answered HTTP ${response.status}.`, ...answer }, lines)
    }
    followJob(answer.jobId, lines.length, albumTitle)
    urlsBox.value = ''
    albumBox.value = ''
    renderChecks()
  } catch (error) {
    showError({ message: `Could not reach the service: ${error.message}` })
  } finally {
    submitButton.disabled = false
  }
}

function followJob(jobId, sent, albumTitle) {
  const card = $('job-template').content.firstElementChild.cloneNode(true)
  const q = (selector) => card.querySelector(selector)
  const title = (count) => `Job ${jobId.slice(0, 8)} · ${count} URL${count === 1 ? '' : 's'}`
  q('.job-title').textContent = title(sent)
  q('.job-title').id = `job-${jobId}`
  q('.job-counts').textContent = 'Waiting to start…'
  card.dataset.jobId = jobId
  $('jobs').prepend(card)
  $('jobs-title').hidden = false

  const shown = new Set()
  const links = []
  const cancel = q('.cancel')
  cancel.setAttribute('aria-describedby', q('.job-title').id)
  q('.copy').addEventListener('click', () => copyLinks(links, q('.copy-result')))
  const show = (status) => {
    // The cancel's answer may arrive after the stream's newer, final status.
    if (card.dataset.status === 'complete' && status.status !== 'complete') return
    const { complete, failed } = status.uploaded
    const total = status.items.length
    const done = complete.length + failed.length
    const cancelled = status.items.filter((item) => item.reason?.code === 'cancelled').length
    q('.job-title').textContent = title(total) // duplicates were merged by the server
    Object.assign(q('.job-progress'), { max: total, value: done })
    q('.job-counts').textContent =
      status.status !== 'complete'
        ? `${done} of ${total} done: ${complete.length} uploaded, ${failed.length} failed.`
        : cancelled > 0
          ? `Cancelled: ${complete.length} uploaded, ${cancelled} cancelled, ${failed.length - cancelled} failed.`
          : `Finished: ${complete.length} uploaded, ${failed.length} failed.`
    if (status.album) showAlbum(q('.job-album'), status.album, albumTitle, done === total)
    status.items.forEach((item, index) => {
      if (item.state === 'pending' || shown.has(index)) return
      shown.add(index)
      if (item.state === 'complete') {
        links.push(item.link)
        q('.job-links').append(thumb(item.link, `Uploaded from ${item.url}`))
      } else {
        const reason = element(
          'span',
          { className: 'reason' },
          `${item.reason.message} (${item.reason.code})`,
        )
        q('.failures').append(element('li', {}, element('code', {}, item.url), ': ', reason))
      }
    })
    q('.copy').disabled = links.length === 0
    card.dataset.status = status.status
    if (status.status === 'complete') {
      if (document.activeElement === cancel) keepFocus()
      cancel.hidden = true
      refreshGallery()
    }
  }
  // A keyboard user whose button goes away keeps their place: on the job, not at the page's top.
  const keepFocus = () => {
    q('.job-title').tabIndex = -1
    q('.job-title').focus()
  }
  cancel.addEventListener('click', async () => {
    // Disabling the button while the request runs takes the focus from it: note who had it.
    const focused = document.activeElement === cancel
    await cancelJob(jobId, cancel, q('.cancel-result'), show)
    if (focused && cancel.hidden) keepFocus()
    else if (focused) cancel.focus()
  })
  void watchJob(jobId, show, (why) => {
    q('.job-counts').textContent = why
  })
}

/** The album asked for with a job: its link once made, why not when it failed, else that it is coming. */
function showAlbum(box, album, title, settled) {
  const name = title ? `Album “${title}”` : 'Album'
  box.hidden = false
  box.dataset.state = album.state
  if (album.state === 'complete') {
    const link = element('a', { href: album.link, target: '_blank', rel: 'noopener' }, album.link)
    box.replaceChildren(`${name}: `, link)
  } else if (album.state === 'failed') {
    const reason = album.reason ? `${album.reason.message} (${album.reason.code})` : 'no reason given'
    box.replaceChildren(`${name} could not be made: `, element('span', { className: 'reason' }, reason))
  } else {
    box.textContent = settled ? `${name}: making album…` : `${name}: made once every URL is done.`
  }
}

/**
 * Asks the service to stop the job: unfinished URLs fail as `cancelled`, uploaded ones stay. The
 * answer is the job's status, shown at once (the stream, if still open, brings what follows).
 */
async function cancelJob(jobId, button, result, show) {
  button.disabled = true
  result.textContent = 'Cancelling…'
  try {
    const response = await api(`/v1/images/upload/${encodeURIComponent(jobId)}/cancel`, { method: 'POST' })
    const answer = await response.json().catch(() => ({}))
    if (response.ok) {
      result.textContent = ''
      show(answer)
    } else if (response.status === 401) {
      result.textContent = 'Not cancelled: the service wants a valid API key.'
      askForKey(true)
    } else if (answer.error === 'job_not_found') {
      result.textContent = 'Not cancelled: the service no longer knows this job.'
    } else {
      result.textContent = `Not cancelled: ${answer.message ?? `the service answered HTTP ${response.status}`}.`
    }
  } catch (error) {
    result.textContent = `Not cancelled: could not reach the service (${error.message}).`
  } finally {
    button.disabled = false
  }
}

/**
 * Follows a job's status stream until `complete`. Server-Sent Events are read with fetch(), since
 * EventSource cannot send the API key; like EventSource it reconnects after a break while the
 * service is away, and gives up on an answer that is not a stream (calling `lost`).
 */
async function watchJob(jobId, onStatus, lost) {
  const url = `/v1/images/upload/${encodeURIComponent(jobId)}/events`
  for (;;) {
    let response
    try {
      response = await api(url, { headers: { accept: 'text/event-stream' }, cache: 'no-store' })
      if (response.status === 401) {
        askForKey(false)
        return lost('Lost track of this job: the service wants a valid API key.')
      }
      const stream = response.ok && response.headers.get('content-type')?.startsWith('text/event-stream')
      // Too many streams or a service about to restart: wait as asked and try again.
      if (!stream && response.status !== 429 && response.status !== 503) {
        return lost('Lost track of this job (the service is gone or forgot it).')
      }
      if (stream && (await readEvents(response, onStatus))) return
    } catch {
      // The connection failed or broke off: try again, as EventSource would.
    }
    const asked = Number(response?.headers.get('retry-after'))
    await sleep(asked > 0 ? Math.min(asked, 60) * 1000 : RECONNECT_MS)
  }
}

/** Calls `onStatus` with each `status` event; true once one says `complete`, false if the stream ends first. */
async function readEvents(response, onStatus) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return false
      // A CRLF split across two chunks is joined here before it is replaced.
      buffer = (buffer + value).replaceAll('\r\n', '\n')
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const event = parseEvent(buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
        if (event?.name !== 'status') continue
        const status = JSON.parse(event.data)
        onStatus(status)
        if (status.status === 'complete') return true
      }
    }
  } finally {
    reader.cancel().catch(() => {})
  }
}

/** One SSE block (https://html.spec.whatwg.org/multipage/server-sent-events.html): its type and data. */
function parseEvent(block) {
  let name = 'message'
  const data = []
  for (const line of block.split('\n')) {
    const colon = line.indexOf(':')
    if (colon === 0) continue
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'event') name = value
    else if (field === 'data') data.push(value)
  }
  return data.length > 0 ? { name, data: data.join('\n') } : undefined
}

async function copyLinks(links, result) {
  const text = links.join('\n')
  try {
    await navigator.clipboard.writeText(text)
  } catch {
    // No clipboard API (plain http on a non-local host) or no permission: the old selection trick.
    const scratch = element('textarea', { value: text, readOnly: true })
    document.body.append(scratch)
    scratch.select()
    const copied = document.execCommand('copy')
    scratch.remove()
    if (!copied) {
      result.textContent = 'Copying is blocked here; the links are in the thumbnails.'
      return
    }
  }
  result.textContent = `Copied ${links.length} link${links.length === 1 ? '' : 's'}.`
}

// `uploaded` only grows, so new links are the tail; refreshes are chained so two never interleave.
// With API keys it lists the key's own links, so another key starts it afresh (`restart`).
let galleryShown = 0
let galleryQueue = Promise.resolve()
function refreshGallery(restart = false) {
  const gallery = $('gallery')
  galleryQueue = galleryQueue
    .then(async () => {
      if (restart) {
        gallery.replaceChildren()
        galleryShown = 0
        $('gallery-empty').hidden = false
      }
      const response = await api('/v1/images', { cache: 'no-store' }).catch(() => undefined)
      if (response?.status === 401) return askForKey(false)
      if (!response?.ok) return
      const { uploaded } = await response.json()
      const shrunk = uploaded.length < galleryShown
      if (shrunk) gallery.replaceChildren()
      for (const link of uploaded.slice(shrunk ? 0 : galleryShown)) {
        gallery.prepend(thumb(link, `Uploaded image ${link}`))
      }
      galleryShown = uploaded.length
      $('gallery-empty').hidden = uploaded.length > 0
    })
    // A failed refresh must not stop the ones chained after it.
    .catch(() => {})
}

urlsBox.addEventListener('input', renderChecks)
form.addEventListener('submit', submit)
fileInput.addEventListener('change', async () => {
  await readFiles([...fileInput.files])
  fileInput.value = ''
})
// Text dropped on the box is inserted natively; only files need handling.
const carriesFiles = (event) => event.dataTransfer?.types.includes('Files')
urlsBox.addEventListener('dragover', (event) => {
  if (!carriesFiles(event)) return
  event.preventDefault()
  urlsBox.classList.add('dragging')
})
urlsBox.addEventListener('dragleave', () => urlsBox.classList.remove('dragging'))
urlsBox.addEventListener('drop', async (event) => {
  urlsBox.classList.remove('dragging')
  if (!carriesFiles(event)) return
  event.preventDefault()
  await readFiles([...event.dataTransfer.files])
})
keyBox.value = apiKey
if (apiKey !== '') $('access').hidden = false
// `change`, not `input`: the key is tried once it is entered, not at every keystroke.
keyBox.addEventListener('change', () => {
  const value = keyBox.value.trim()
  if (value !== '' && !/^[\x21-\x7E]+$/.test(value)) {
    keyError.textContent = 'An API key has no spaces or accented letters: check what was pasted.'
    keyError.hidden = false
    return
  }
  keyError.hidden = true
  saveKey(value)
  refreshGallery(true)
})
renderChecks()
refreshGallery()
