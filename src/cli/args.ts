/** The command line's arguments: what to upload, to which service, and how to report. */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'

export const USAGE = `Usage: imgur-upload [options] <url>...
       imgur-upload [options] --file urls.txt
       some-command | imgur-upload [options] -
       imgur-upload cancel [--server <url>] [--api-key <key>] [--json] <jobId>
       imgur-upload keygen [name]

Uploads images to Imgur through an imgur-upload service: submits the URLs as one job, shows its
progress, then prints each URL with its Imgur link or the reason it failed.

Options:
  -f, --file <path>          read URLs from a file, one per line ("-" for standard input);
                             blank lines and lines starting with # are ignored
  -s, --server <url>         the service (default: $IMGUR_UPLOAD_SERVER or http://localhost:3000)
      --api-key <key>        the API key (sent as a Bearer token) of a service that sets API_KEYS
                             (default: $IMGUR_UPLOAD_API_KEY)
      --client-id <id>       upload this job with your own Imgur client id
      --album-title <t>      also make an Imgur album of the job's images, in submission order,
                             titled <t> (1 to 255 characters); the report gives its link
      --album-description <d>
                             the album's description (1 to 2048 characters; makes an album too)
      --webhook-url <url>    the service calls this URL (https) with a signed job.completed
                             event (Standard Webhooks) when the job completes; the service must
                             set WEBHOOK_SECRET. The report says how the delivery went
      --json                 print the job's final status document as JSON instead of lines
  -h, --help                 show this help

Each submission carries a new random Idempotency-Key: when the connection drops before the answer,
the submission is sent once more with the same key, and the service does not take the job twice.

Commands:
  cancel <jobId>             stop a job: its URLs not finished yet fail with reason "cancelled",
                             uploaded ones stay; prints the job's final report
  keygen [name]              print a new random API key and the service's API_KEYS entry for it,
                             name:sha256hex (the name defaults to "default")

Exit status: 0 every image uploaded (after cancel: uploaded or cancelled), 1 some failed or the
album could not be made, 2 usage, connection or service errors (for cancel, also a job id the
service does not know).
`

/** The album to make of a job's images: what `--album-title` and `--album-description` give. */
export type AlbumRequest = { title?: string; description?: string }

export type CliOptions =
  | {
      command: 'upload'
      urls: string[]
      server: string
      apiKey: string | undefined
      clientId: string | undefined
      album: AlbumRequest | undefined
      webhookUrl: string | undefined
      json: boolean
    }
  | { command: 'cancel'; jobId: string; server: string; apiKey: string | undefined; json: boolean }
  | { command: 'keygen'; name: string }

/** The service's rule for key names (API_KEYS entries are `name:sha256hex`). */
const KEY_NAME = /^[\w.-]{1,64}$/
/** What an HTTP header may carry without quoting: visible ASCII. */
const HEADER_SAFE = /^[\x21-\x7E]+$/

/** A mistake in how the command was called: reported with the usage hint, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** One URL a line; surrounding spaces, blank lines and `#` comments are dropped. */
export function readUrlLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
}

/** `help` when --help was asked for; otherwise every option resolved, with the URLs read. */
export async function parseCli(
  argv: string[],
  env: Record<string, string | undefined>,
  stdin: () => Promise<string>,
): Promise<CliOptions | 'help'> {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help) return 'help'
  if (positionals[0] === 'keygen') return keygenOptions(argv, positionals.slice(1))
  if (positionals[0] === 'cancel') return cancelOptions(values, positionals.slice(1), env)

  const service = serviceOptions(values, env)
  if (values['client-id'] === '') throw new UsageError('--client-id must not be empty')
  const sources = [...(values.file ?? []), ...positionals.filter((arg) => arg === '-')]
  if (sources.filter((source) => source === '-').length > 1)
    throw new UsageError('standard input can be read once')
  const urls = positionals.filter((arg) => arg !== '-')
  for (const source of sources) {
    const text = source === '-' ? await stdin() : await readFile(source, 'utf8').catch(cannotRead(source))
    urls.push(...readUrlLines(text))
  }
  if (urls.length === 0) throw new UsageError('no URLs given')
  return {
    command: 'upload',
    urls,
    ...service,
    clientId: values['client-id'],
    album: albumOptions(values),
    webhookUrl: webhookOption(values['webhook-url']),
    json: values.json,
  }
}

type Values = ReturnType<typeof parse>['values']

/** The service to talk to and the key to show it, from the options or the environment. */
function serviceOptions(values: Values, env: Record<string, string | undefined>) {
  // An empty variable counts as unset; an empty --server or --api-key is a mistake.
  const server = values.server ?? (env.IMGUR_UPLOAD_SERVER || 'http://localhost:3000')
  const url = URL.parse(server)
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError(`--server must be an http(s) URL, got ${JSON.stringify(server)}`)
  }
  const apiKey = values['api-key'] ?? (env.IMGUR_UPLOAD_API_KEY || undefined)
  if (apiKey !== undefined && !HEADER_SAFE.test(apiKey)) {
    throw new UsageError('--api-key must be visible ASCII characters without spaces (as keygen prints them)')
  }
  return { server: url.href.replace(/\/+$/, ''), apiKey }
}

/** The API's limits (src/http/schemas.ts), counted in characters as its validator counts them. */
function albumOptions(values: Values): AlbumRequest | undefined {
  const title = values['album-title']
  const description = values['album-description']
  if (title === undefined && description === undefined) return undefined
  const length = (text: string) => [...text].length
  if (title !== undefined && (length(title) < 1 || length(title) > 255)) {
    throw new UsageError(`--album-title must be 1 to 255 characters, got ${length(title)}`)
  }
  if (description !== undefined && (length(description) < 1 || length(description) > 2048)) {
    throw new UsageError(`--album-description must be 1 to 2048 characters, got ${length(description)}`)
  }
  return { ...(title !== undefined && { title }), ...(description !== undefined && { description }) }
}

/** Only the shape is checked here; the service decides which hosts it may call. */
function webhookOption(webhookUrl: string | undefined): string | undefined {
  if (webhookUrl === undefined) return undefined
  const url = URL.parse(webhookUrl)
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || webhookUrl.length > 2048) {
    throw new UsageError(
      `--webhook-url must be an http(s) URL of at most 2048 characters, got ${JSON.stringify(webhookUrl.slice(0, 100))}`,
    )
  }
  return webhookUrl
}

/** Options that shape a submission, which mean nothing to cancel. */
const UPLOAD_ONLY = ['file', 'client-id', 'album-title', 'album-description', 'webhook-url'] as const

function cancelOptions(values: Values, ids: string[], env: Record<string, string | undefined>): CliOptions {
  const extra = UPLOAD_ONLY.find((option) => values[option] !== undefined)
  if (extra !== undefined) throw new UsageError(`cancel takes --server, --api-key and --json, not --${extra}`)
  const [jobId] = ids
  if (ids.length !== 1 || jobId === undefined || jobId === '') throw new UsageError('cancel takes one job id')
  return { command: 'cancel', jobId, ...serviceOptions(values, env), json: values.json }
}

function keygenOptions(argv: string[], names: string[]): CliOptions {
  if (argv.some((arg) => arg.startsWith('-'))) throw new UsageError('keygen takes no options, only a name')
  if (names.length > 1) throw new UsageError('keygen takes one name')
  const name = names[0] ?? 'default'
  if (!KEY_NAME.test(name)) {
    throw new UsageError(
      `a key name is 1 to 64 letters, digits, \`.\`, \`_\` or \`-\`, got ${JSON.stringify(name)}`,
    )
  }
  return { command: 'keygen', name }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      file: { type: 'string', short: 'f', multiple: true },
      server: { type: 'string', short: 's' },
      'api-key': { type: 'string' },
      'client-id': { type: 'string' },
      'album-title': { type: 'string' },
      'album-description': { type: 'string' },
      'webhook-url': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
}

function cannotRead(path: string) {
  return (error: NodeJS.ErrnoException): never => {
    throw new UsageError(`cannot read ${path}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`)
  }
}
