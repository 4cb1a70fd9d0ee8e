// The page: check pasted URLs, submit them, follow each job over Server-Sent Events, and keep a
// gallery of everything uploaded. Plain DOM; text is only ever set with textContent.
import { checkLines, readLines } from './checks.js'

const $ = (id) => document.getElementById(id)
const form = $('upload')
const urlsBox = $('urls')
const fileInput = $('file')
const clientIdBox = $('client-id')
const submitButton = $('submit')
const errorBox = $('error')
const MAX_FILE_BYTES = 4 * 1024 * 1024
const SHOWN_CHECKS = 10

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
  submitButton.disabled = true
  try {
    const response = await fetch('/v1/images/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    const answer = await response.json().catch(() => ({}))
    if (response.status !== 202) {
      return showError({ message: `The service answered HTTP ${response.status}.`, ...answer }, lines)
    }
    followJob(answer.jobId, lines.length)
    urlsBox.value = ''
    renderChecks()
  } catch (error) {
    showError({ message: `Could not reach the service: ${error.message}` })
  } finally {
    submitButton.disabled = false
  }
}

function followJob(jobId, sent) {
  const card = $('job-template').content.firstElementChild.cloneNode(true)
  const q = (selector) => card.querySelector(selector)
  const title = (count) => `Job ${jobId.slice(0, 8)} · ${count} URL${count === 1 ? '' : 's'}`
  q('.job-title').textContent = title(sent)
  q('.job-counts').textContent = 'Waiting to start…'
  card.dataset.jobId = jobId
  $('jobs').prepend(card)
  $('jobs-title').hidden = false

  const shown = new Set()
  const links = []
  q('.copy').addEventListener('click', () => copyLinks(links, q('.copy-result')))
  const source = new EventSource(`/v1/images/upload/${encodeURIComponent(jobId)}/events`)
  source.addEventListener('status', (event) => {
    const status = JSON.parse(event.data)
    const { complete, failed } = status.uploaded
    const total = status.items.length
    const done = complete.length + failed.length
    q('.job-title').textContent = title(total) // duplicates were merged by the server
    Object.assign(q('.job-progress'), { max: total, value: done })
    q('.job-counts').textContent =
      status.status === 'complete'
        ? `Finished: ${complete.length} uploaded, ${failed.length} failed.`
        : `${done} of ${total} done: ${complete.length} uploaded, ${failed.length} failed.`
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
    // The server ends the stream after `complete`; closing first stops EventSource reconnecting.
    if (status.status === 'complete') {
      source.close()
      refreshGallery()
    }
  })
  source.addEventListener('error', () => {
    // While the service is reachable EventSource reconnects by itself; CLOSED means it gave up.
    if (source.readyState === EventSource.CLOSED) {
      q('.job-counts').textContent = 'Lost track of this job (the service is gone or forgot it).'
    }
  })
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
let galleryShown = 0
let galleryQueue = Promise.resolve()
function refreshGallery() {
  galleryQueue = galleryQueue.then(async () => {
    const response = await fetch('/v1/images', { cache: 'no-store' }).catch(() => undefined)
    if (!response?.ok) return
    const { uploaded } = await response.json()
    const gallery = $('gallery')
    if (uploaded.length < galleryShown) gallery.replaceChildren()
    for (const link of uploaded.slice(uploaded.length < galleryShown ? 0 : galleryShown)) {
      gallery.prepend(thumb(link, `Uploaded image ${link}`))
    }
    galleryShown = uploaded.length
    $('gallery-empty').hidden = uploaded.length > 0
  })
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
renderChecks()
refreshGallery()
