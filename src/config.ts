/**
 * The only reader of process.env. Every variable is parsed, validated and defaulted here, and
 * start-up fails listing every bad one at once.
 */
export type Config = Readonly<{
  port: number
  host: string
  logLevel: string
  /**
   * How long the API waits on a client: for one request to arrive whole (headers and body), and
   * on a connection where nothing moves either way. Status streams keep their own rules.
   */
  requestTimeoutMs: number
  /** `sandbox` when neither IMGUR_CLIENT_ID nor IMGUR_API_URL is set: the built-in emulator is started. */
  imgurMode: 'live' | 'sandbox'
  imgurApiUrl: string
  imgurClientId: string | undefined
  imgurClientSecret: string | undefined
  imgurRefreshToken: string | undefined
  uploadConcurrency: number
  perHostConcurrency: number
  maxUrlsPerJob: number
  maxPendingItems: number
  /** The largest image ever sent to Imgur (its API's cap for the `image` field). */
  maxImageBytes: number
  /** Cap on an image download, which may be larger than maxImageBytes when it will be re-encoded or converted. */
  maxDownloadBytes: number
  /** Cap on a video, streamed to Imgur's `video` field; 0 refuses videos. */
  maxVideoBytes: number
  /** Total deadline of one video: its download and upload run at once, so one clock covers both. */
  videoTimeoutMs: number
  convertUnsupported: boolean
  reencodeOversized: boolean
  /** Decompression-bomb guard: images declaring more pixels (all frames together) are never decoded. */
  maxInputPixels: number
  /** Images decoded at once; each may hold up to maxInputPixels × 4 bytes while converting. */
  convertConcurrency: number
  fetchTimeoutMs: number
  uploadTimeoutMs: number
  fetchAllowPrivateNetworks: boolean
  maxRedirects: number
  retryMaxAttempts: number
  retryBaseDelayMs: number
  retryMaxDelayMs: number
  maxRateLimitWaitMs: number
  jobRetentionCount: number
  jobRetentionMs: number
  shutdownTimeoutMs: number
  /** Total deadline of one attempt at an image item: download, conversion and upload together. */
  itemTimeoutMs: number
  /** Deadline of one conversion or re-encoding (sharp's `timeout`; the HEIC worker is terminated). */
  convertTimeoutMs: number
  /** Finished jobs kept at most, by the bytes they retain (see README, "Memory budget"). */
  jobRetentionBytes: number
  /** Admission refuses a job when the pending items' retained bytes would pass this. */
  maxPendingBytes: number
  /** Content hashes remembered for de-duplication (least recently used dropped first). */
  dedupMaxEntries: number
  /**
   * The item pipeline thread's old-generation limit in bytes (V8 counts whole MiB); 0: V8's own
   * (a share of the machine's memory). Under 2 GiB a limit also makes V8 collect the thread's
   * garbage sooner, and the lower it is the more often (README, Performance).
   */
  pipelineMaxHeapBytes: number
  /** Imgur budgets (per credential) remembered (least recently used dropped first). */
  budgetMaxEntries: number
  /** The service's own public origin, never downloaded from; undefined when not set. */
  publicUrl: string | undefined
  /** A stream whose client has read nothing for this long is closed. */
  streamIdleTimeoutMs: number
  maxStreams: number
  maxStreamsPerClient: number
  /** Hex SHA-256 of each API key, by key name; empty: the API is open. */
  apiKeys: ReadonlyMap<string, string>
  /** Submissions per minute, per API key (per client IP without keys). */
  submitRateLimit: number
  /** URLs per UTC day, per API key (per client IP without keys); 0: no quota. */
  dailyUrlQuota: number
  /** The key of webhook signatures (`whsec_<base64>`); undefined: webhooks are refused. */
  webhookSecret: string | undefined
  /** Waits before each retry of a webhook delivery; past the last, the delivery has failed. */
  webhookRetryDelaysMs: readonly number[]
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlMs: number
  /** Redis of a fleet (`redis://…`); undefined: jobs live in this process's memory only. */
  redisUrl: string | undefined
  /** What this replica does in a fleet: `all`, `api` (HTTP only) or `worker` (processing, plus /health). */
  role: 'all' | 'api' | 'worker'
  /** Prefix of every Redis key, so fleets (or tests) can share one Redis. */
  redisPrefix: string
  /** A fleet worker's lock on an item; a replica silent this long has its items taken up by others. */
  fleetLockMs: number
  sandboxPort: number
  /** Interface the built-in sandbox listens on (loopback unless set). */
  sandboxHost: string
  /** Bytes the sandbox keeps at most; the oldest images are dropped first. */
  sandboxMaxBytes: number
  /** Base of sandbox links; undefined with SANDBOX_PORT=0, when the sandbox uses its own address. */
  sandboxPublicUrl: string | undefined
}>

type Env = Record<string, string | undefined>

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
/** The least PIPELINE_MAX_HEAP_BYTES there is room to work in, besides 0 (no limit of ours). */
const MIN_PIPELINE_HEAP_BYTES = 64 * 1024 * 1024
/**
 * PIPELINE_MAX_HEAP_BYTES by default: 2040 MiB, just under the 2 GiB at which V8 lets an old
 * generation grow to four times what survived its last full collection instead of at most twice
 * (`MemoryController::MaxGrowingFactor`). The thread holds 15–25 MB; what the limit buys is the
 * growth: its old garbage, the items' bytes among it, is collected sooner (README, Performance).
 */
const DEFAULT_PIPELINE_HEAP_BYTES = 2040 * 1024 * 1024

export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.problems = problems
  }
}

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = []
  const read = (name: string): string | undefined => {
    const value = env[name]?.trim()
    return value === '' ? undefined : value
  }
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = read(name)
    if (raw === undefined) return fallback
    const value = Number(raw)
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`Expected \`${name}\` to be an integer from ${min} to ${max}, got \`${raw}\``)
      return fallback
    }
    return value
  }
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = read(name)
    if (raw === undefined) return fallback
    if (/^(true|1|yes)$/i.test(raw)) return true
    if (/^(false|0|no)$/i.test(raw)) return false
    problems.push(`Expected \`${name}\` to be true or false, got \`${raw}\``)
    return fallback
  }
  const httpUrl = (name: string, fallback: string): string => {
    const raw = read(name) ?? fallback
    const url = URL.parse(raw)
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) {
      problems.push(`Expected \`${name}\` to be an http(s) URL without credentials, got \`${raw}\``)
      return fallback
    }
    return url.href.replace(/\/+$/, '')
  }

  const logLevel = read('LOG_LEVEL') ?? 'info'
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`Expected \`LOG_LEVEL\` to be one of ${LOG_LEVELS.join(', ')}, got \`${logLevel}\``)
  }
  const imgurClientId = read('IMGUR_CLIENT_ID')
  const imgurClientSecret = read('IMGUR_CLIENT_SECRET')
  const imgurRefreshToken = read('IMGUR_REFRESH_TOKEN')
  if (
    (imgurClientSecret || imgurRefreshToken) &&
    !(imgurClientId && imgurClientSecret && imgurRefreshToken)
  ) {
    problems.push(
      'Expected `IMGUR_CLIENT_ID`, `IMGUR_CLIENT_SECRET` and `IMGUR_REFRESH_TOKEN` to be set together for account uploads',
    )
  }
  const imgurMode = imgurClientId === undefined && read('IMGUR_API_URL') === undefined ? 'sandbox' : 'live'
  const port = int('PORT', 3000, 0, 65535)
  const maxImageBytes = int('MAX_IMAGE_BYTES', 10 * 1024 * 1024, 1)
  // The default follows a larger MAX_IMAGE_BYTES; only an explicit value below it is an error.
  const maxDownloadBytes = int('MAX_DOWNLOAD_BYTES', Math.max(50 * 1024 * 1024, maxImageBytes), 1)
  if (maxDownloadBytes < maxImageBytes) {
    problems.push(
      `Expected \`MAX_DOWNLOAD_BYTES\` to be at least \`MAX_IMAGE_BYTES\` (${maxImageBytes}), got \`${maxDownloadBytes}\``,
    )
  }
  const sandboxPort = int('SANDBOX_PORT', 3001, 0, 65535)
  const apiKeys = new Map<string, string>()
  for (const entry of (read('API_KEYS') ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const match = /^([\w.-]{1,64}):([0-9a-fA-F]{64})$/.exec(entry)
    if (!match) {
      problems.push(
        `Expected \`API_KEYS\` entries to be \`name:sha256hex\` (a name of letters, digits, \`._-\` and the hex SHA-256 of the key), got \`${entry.slice(0, 80)}\``,
      )
    } else if (apiKeys.has(match[1] as string)) {
      problems.push(`Expected \`API_KEYS\` names to be unique, got \`${match[1]}\` twice`)
    } else apiKeys.set(match[1] as string, (match[2] as string).toLowerCase())
  }
  const webhookSecret = read('WEBHOOK_SECRET')
  if (webhookSecret !== undefined) {
    const key = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(webhookSecret)?.[1]
    const bytes = key === undefined ? 0 : Buffer.from(key, 'base64').length
    if (bytes < 24 || bytes > 64) {
      problems.push('Expected `WEBHOOK_SECRET` to be `whsec_` and the base64 of 24 to 64 random bytes')
    }
  }
  const rawDelays = read('WEBHOOK_RETRY_DELAYS_MS') ?? '5000,300000,1800000,7200000,18000000,36000000'
  const delayParts = rawDelays.split(',').map((part) => part.trim())
  const webhookRetryDelaysMs = delayParts.map(Number)
  if (!delayParts.every((part) => /^\d{1,10}$/.test(part))) {
    problems.push(
      `Expected \`WEBHOOK_RETRY_DELAYS_MS\` to be a comma-separated list of whole milliseconds, got \`${rawDelays.slice(0, 80)}\``,
    )
  }
  const redisUrl = read('REDIS_URL')
  if (redisUrl !== undefined && !/^rediss?:\/\/[^\s]+$/.test(redisUrl)) {
    problems.push(
      `Expected \`REDIS_URL\` to be a redis:// or rediss:// URL, got \`${redisUrl.slice(0, 80)}\``,
    )
  }
  const role = read('ROLE') ?? 'all'
  if (role !== 'all' && role !== 'api' && role !== 'worker') {
    problems.push(`Expected \`ROLE\` to be all, api or worker, got \`${role.slice(0, 40)}\``)
  } else if (role !== 'all' && redisUrl === undefined) {
    problems.push(
      `Expected \`REDIS_URL\` with \`ROLE=${role}\`: only a fleet splits the API from the workers`,
    )
  }
  const redisPrefix = read('REDIS_PREFIX') ?? 'iu'
  if (!/^[\w.:-]{1,64}$/.test(redisPrefix)) {
    problems.push(
      `Expected \`REDIS_PREFIX\` to be 1 to 64 letters, digits or \`_.:-\`, got \`${redisPrefix.slice(0, 80)}\``,
    )
  }
  const pipelineMaxHeapBytes = int('PIPELINE_MAX_HEAP_BYTES', DEFAULT_PIPELINE_HEAP_BYTES, 0)
  // Below this the thread could not hold its own code (undici, file-type, ours: about 20 MB).
  if (pipelineMaxHeapBytes > 0 && pipelineMaxHeapBytes < MIN_PIPELINE_HEAP_BYTES) {
    problems.push(
      `Expected \`PIPELINE_MAX_HEAP_BYTES\` to be 0 (V8's own limit) or at least ${MIN_PIPELINE_HEAP_BYTES} (64 MiB), got \`${pipelineMaxHeapBytes}\``,
    )
  }
  const fetchTimeoutMs = int('FETCH_TIMEOUT_MS', 30_000, 1)
  const uploadTimeoutMs = int('UPLOAD_TIMEOUT_MS', 60_000, 1)
  const convertTimeoutMs = int('CONVERT_TIMEOUT_MS', 30_000, 1)

  const config: Config = {
    port,
    host: read('HOST') ?? '0.0.0.0',
    logLevel,
    // Not below 100 ms: requests are checked against it every min(it, 1 s) (http/app.ts).
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000),
    imgurMode,
    imgurApiUrl: httpUrl('IMGUR_API_URL', 'https://api.imgur.com'),
    imgurClientId,
    imgurClientSecret,
    imgurRefreshToken,
    uploadConcurrency: int('UPLOAD_CONCURRENCY', 8, 1, 1024),
    perHostConcurrency: int('PER_HOST_CONCURRENCY', 4, 1, 1024),
    maxUrlsPerJob: int('MAX_URLS_PER_JOB', 1000, 1, 100_000),
    maxPendingItems: int('MAX_PENDING_ITEMS', 100_000, 1, 10_000_000),
    maxImageBytes,
    maxDownloadBytes,
    maxVideoBytes: int('MAX_VIDEO_BYTES', 200 * 1024 * 1024, 0),
    videoTimeoutMs: int('VIDEO_TIMEOUT_MS', 600_000, 1),
    convertUnsupported: bool('CONVERT_UNSUPPORTED', true),
    reencodeOversized: bool('REENCODE_OVERSIZED', true),
    maxInputPixels: int('MAX_INPUT_PIXELS', 100_000_000, 1),
    convertConcurrency: int('CONVERT_CONCURRENCY', 2, 1, 64),
    fetchTimeoutMs,
    uploadTimeoutMs,
    fetchAllowPrivateNetworks: bool('FETCH_ALLOW_PRIVATE_NETWORKS', false),
    maxRedirects: int('MAX_REDIRECTS', 5, 0, 20),
    retryMaxAttempts: int('RETRY_MAX_ATTEMPTS', 4, 1, 100),
    retryBaseDelayMs: int('RETRY_BASE_DELAY_MS', 500, 0),
    retryMaxDelayMs: int('RETRY_MAX_DELAY_MS', 30_000, 0),
    maxRateLimitWaitMs: int('MAX_RATE_LIMIT_WAIT_MS', 10 * 60_000, 0),
    jobRetentionCount: int('JOB_RETENTION_COUNT', 10_000, 1),
    jobRetentionMs: int('JOB_RETENTION_MS', 24 * 3600_000, 1),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 10_000, 0),
    // By default an attempt may spend each stage's whole deadline.
    itemTimeoutMs: int('ITEM_TIMEOUT_MS', fetchTimeoutMs + convertTimeoutMs + uploadTimeoutMs, 1),
    convertTimeoutMs,
    jobRetentionBytes: int('JOB_RETENTION_BYTES', 64 * 1024 * 1024, 1024),
    maxPendingBytes: int('MAX_PENDING_BYTES', 64 * 1024 * 1024, 1024),
    dedupMaxEntries: int('DEDUP_MAX_ENTRIES', 100_000, 1),
    pipelineMaxHeapBytes,
    budgetMaxEntries: int('BUDGET_MAX_ENTRIES', 10_000, 1),
    publicUrl: read('PUBLIC_URL') === undefined ? undefined : httpUrl('PUBLIC_URL', 'http://localhost'),
    streamIdleTimeoutMs: int('STREAM_IDLE_TIMEOUT_MS', 60_000, 1),
    maxStreams: int('MAX_STREAMS', 1000, 1),
    maxStreamsPerClient: int('MAX_STREAMS_PER_CLIENT', 20, 1),
    apiKeys,
    submitRateLimit: int('SUBMIT_RATE_LIMIT', 60, 1),
    dailyUrlQuota: int('DAILY_URL_QUOTA', 10_000, 0),
    webhookSecret,
    webhookRetryDelaysMs: Object.freeze(webhookRetryDelaysMs),
    idempotencyTtlMs: int('IDEMPOTENCY_TTL_MS', 24 * 3600_000, 1),
    redisUrl,
    role: role === 'api' || role === 'worker' ? role : 'all',
    redisPrefix,
    fleetLockMs: int('FLEET_LOCK_MS', 30_000, 1000, 3_600_000),
    sandboxPort,
    sandboxHost: read('SANDBOX_HOST') ?? '127.0.0.1',
    sandboxMaxBytes: int('SANDBOX_MAX_BYTES', 256 * 1024 * 1024, 1024 * 1024),
    sandboxPublicUrl:
      read('SANDBOX_PUBLIC_URL') === undefined && sandboxPort === 0
        ? undefined
        : httpUrl('SANDBOX_PUBLIC_URL', `http://localhost:${sandboxPort}`),
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return Object.freeze(config)
}
