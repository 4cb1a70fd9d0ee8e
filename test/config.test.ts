import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError, loadConfig } from '../src/config.ts'

test('defaults match the documented ones, in sandbox mode without credentials', () => {
  const config = loadConfig({})
  assert.equal(config.port, 3000)
  assert.equal(config.host, '0.0.0.0')
  assert.equal(config.logLevel, 'info')
  assert.equal(config.imgurMode, 'sandbox')
  assert.equal(config.imgurApiUrl, 'https://api.imgur.com')
  assert.equal(config.uploadConcurrency, 8)
  assert.equal(config.perHostConcurrency, 4)
  assert.equal(config.maxUrlsPerJob, 1000)
  assert.equal(config.maxPendingItems, 100_000)
  assert.equal(config.maxImageBytes, 10_485_760)
  assert.equal(config.fetchTimeoutMs, 30_000)
  assert.equal(config.fetchAllowPrivateNetworks, false)
  assert.equal(config.maxRedirects, 5)
  assert.equal(config.maxRateLimitWaitMs, 600_000)
  assert.equal(config.sandboxPublicUrl, 'http://localhost:3001')
  assert.ok(Object.isFrozen(config))
})

test('a client id or an API URL switches to live mode', () => {
  assert.equal(loadConfig({ IMGUR_CLIENT_ID: 'abc' }).imgurMode, 'live')
  assert.equal(loadConfig({ IMGUR_API_URL: 'http://127.0.0.1:9999/' }).imgurMode, 'live')
  assert.equal(loadConfig({ IMGUR_API_URL: 'http://127.0.0.1:9999/' }).imgurApiUrl, 'http://127.0.0.1:9999')
})

test('values are parsed and blank ones fall back to defaults', () => {
  const config = loadConfig({
    PORT: '8080',
    UPLOAD_CONCURRENCY: '3',
    FETCH_ALLOW_PRIVATE_NETWORKS: 'true',
    LOG_LEVEL: 'debug',
    MAX_IMAGE_BYTES: ' ',
  })
  assert.equal(config.port, 8080)
  assert.equal(config.uploadConcurrency, 3)
  assert.equal(config.fetchAllowPrivateNetworks, true)
  assert.equal(config.logLevel, 'debug')
  assert.equal(config.maxImageBytes, 10_485_760)
})

test('every bad variable is named at once', () => {
  assert.throws(
    () =>
      loadConfig({
        PORT: 'eighty',
        UPLOAD_CONCURRENCY: '0',
        FETCH_ALLOW_PRIVATE_NETWORKS: 'maybe',
        LOG_LEVEL: 'loud',
        IMGUR_API_URL: 'ftp://x',
        MAX_URLS_PER_JOB: '1.5',
        IMGUR_CLIENT_SECRET: 'secret-without-the-rest',
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      const text = error.problems.join('\n')
      for (const name of [
        'PORT',
        'UPLOAD_CONCURRENCY',
        'FETCH_ALLOW_PRIVATE_NETWORKS',
        'LOG_LEVEL',
        'IMGUR_API_URL',
        'MAX_URLS_PER_JOB',
        'IMGUR_REFRESH_TOKEN',
      ]) {
        assert.match(text, new RegExp(`\`${name}\``))
      }
      assert.equal(error.problems.length, 7)
      assert.match(error.message, /Expected `UPLOAD_CONCURRENCY` to be an integer from 1 to 1024, got `0`/)
      assert.doesNotMatch(error.message, /secret-without-the-rest/)
      return true
    },
  )
})

test('conversion, re-encoding and video limits: defaults and checks', () => {
  const config = loadConfig({})
  assert.equal(config.convertUnsupported, true)
  assert.equal(config.reencodeOversized, true)
  assert.equal(config.maxDownloadBytes, 50 * 1024 * 1024)
  assert.equal(config.maxVideoBytes, 200 * 1024 * 1024)
  assert.equal(config.videoTimeoutMs, 600_000)
  assert.equal(config.maxInputPixels, 100_000_000)
  assert.equal(config.convertConcurrency, 2)
  // A larger image cap lifts the default download cap with it; an explicit smaller one is an error.
  assert.equal(loadConfig({ MAX_IMAGE_BYTES: String(60 * 1024 * 1024) }).maxDownloadBytes, 60 * 1024 * 1024)
  assert.equal(loadConfig({ MAX_VIDEO_BYTES: '0', CONVERT_UNSUPPORTED: 'no' }).maxVideoBytes, 0)
  assert.throws(
    () =>
      loadConfig({
        MAX_IMAGE_BYTES: '2000',
        MAX_DOWNLOAD_BYTES: '1000',
        MAX_INPUT_PIXELS: '0',
        REENCODE_OVERSIZED: 'sometimes',
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      assert.deepEqual(error.problems, [
        'Expected `MAX_DOWNLOAD_BYTES` to be at least `MAX_IMAGE_BYTES` (2000), got `1000`',
        'Expected `REENCODE_OVERSIZED` to be true or false, got `sometimes`',
        'Expected `MAX_INPUT_PIXELS` to be an integer from 1 to 9007199254740991, got `0`',
      ])
      return true
    },
  )
})

test("PIPELINE_MAX_HEAP_BYTES: 2040 MiB by default; 0 for V8's own limit, else at least 64 MiB", () => {
  assert.equal(loadConfig({}).pipelineMaxHeapBytes, 2040 * 1024 * 1024)
  assert.equal(loadConfig({ PIPELINE_MAX_HEAP_BYTES: '0' }).pipelineMaxHeapBytes, 0)
  assert.equal(
    loadConfig({ PIPELINE_MAX_HEAP_BYTES: String(512 * 1024 * 1024) }).pipelineMaxHeapBytes,
    512 * 1024 * 1024,
  )
  for (const [raw, problem] of [
    ['1048576', "to be 0 (V8's own limit) or at least 67108864 (64 MiB), got `1048576`"],
    ['512M', 'to be an integer from 0 to 9007199254740991, got `512M`'],
  ] as const) {
    assert.throws(
      () => loadConfig({ PIPELINE_MAX_HEAP_BYTES: raw }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError)
        assert.deepEqual(error.problems, [`Expected \`PIPELINE_MAX_HEAP_BYTES\` ${problem}`])
        return true
      },
    )
  }
})

test('limits for many clients default to the documented values', () => {
  const config = loadConfig({})
  assert.equal(config.itemTimeoutMs, 30_000 + 30_000 + 60_000)
  assert.equal(config.convertTimeoutMs, 30_000)
  assert.equal(config.jobRetentionBytes, 64 * 1024 * 1024)
  assert.equal(config.maxPendingBytes, 64 * 1024 * 1024)
  assert.equal(config.streamIdleTimeoutMs, 60_000)
  assert.equal(config.maxStreams, 1000)
  assert.equal(config.maxStreamsPerClient, 20)
  assert.equal(config.apiKeys.size, 0)
  assert.equal(config.submitRateLimit, 60)
  assert.equal(config.dailyUrlQuota, 10_000)
  assert.equal(config.publicUrl, undefined)
  assert.equal(config.sandboxHost, '127.0.0.1')
  assert.equal(config.sandboxMaxBytes, 256 * 1024 * 1024)
})

test('API_KEYS are parsed into names and lower-case hashes; bad entries are named', () => {
  const hash = 'A'.repeat(64)
  const config = loadConfig({ API_KEYS: ` alice:${hash} , bob:${'b'.repeat(64)}` })
  assert.deepEqual(
    [...config.apiKeys],
    [
      ['alice', 'a'.repeat(64)],
      ['bob', 'b'.repeat(64)],
    ],
  )
  assert.throws(
    () => loadConfig({ API_KEYS: `alice:${hash},alice:${hash},carol:secret` }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      assert.match(error.problems.join('\n'), /`alice` twice/)
      assert.match(error.problems.join('\n'), /got `carol:secret`/)
      return true
    },
  )
})

test('REQUEST_TIMEOUT_MS: 30 s by default, from 100 ms to an hour', () => {
  assert.equal(loadConfig({}).requestTimeoutMs, 30_000)
  assert.equal(loadConfig({ REQUEST_TIMEOUT_MS: '100' }).requestTimeoutMs, 100)
  assert.equal(loadConfig({ REQUEST_TIMEOUT_MS: '3600000' }).requestTimeoutMs, 3_600_000)
  for (const bad of ['0', '99', '3600001', '30s']) {
    assert.throws(() => loadConfig({ REQUEST_TIMEOUT_MS: bad }), {
      name: 'ConfigError',
      problems: [`Expected \`REQUEST_TIMEOUT_MS\` to be an integer from 100 to 3600000, got \`${bad}\``],
    })
  }
})

test('ITEM_TIMEOUT_MS follows the stage deadlines unless set', () => {
  assert.equal(
    loadConfig({ FETCH_TIMEOUT_MS: '1000', UPLOAD_TIMEOUT_MS: '2000', CONVERT_TIMEOUT_MS: '3000' })
      .itemTimeoutMs,
    6000,
  )
  assert.equal(loadConfig({ ITEM_TIMEOUT_MS: '500' }).itemTimeoutMs, 500)
  assert.equal(loadConfig({ PUBLIC_URL: 'https://up.example.com/' }).publicUrl, 'https://up.example.com')
})

test('webhook and idempotency settings: defaults and checks', () => {
  const config = loadConfig({})
  assert.equal(config.webhookSecret, undefined)
  assert.deepEqual(config.webhookRetryDelaysMs, [5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000])
  assert.equal(config.idempotencyTtlMs, 24 * 3600_000)
  const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`
  const set = loadConfig({ WEBHOOK_SECRET: secret, WEBHOOK_RETRY_DELAYS_MS: '10, 20' })
  assert.equal(set.webhookSecret, secret)
  assert.deepEqual(set.webhookRetryDelaysMs, [10, 20])
  assert.throws(
    () => loadConfig({ WEBHOOK_SECRET: 'whsec_c2hvcnQ=', WEBHOOK_RETRY_DELAYS_MS: '5s,10' }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      assert.match(error.problems.join('\n'), /`WEBHOOK_SECRET` to be `whsec_`/)
      assert.match(error.problems.join('\n'), /`WEBHOOK_RETRY_DELAYS_MS`.*got `5s,10`/)
      return true
    },
  )
})

test('fleet settings: memory mode by default; REDIS_URL, ROLE, REDIS_PREFIX and FLEET_LOCK_MS checked', () => {
  const memory = loadConfig({})
  assert.deepEqual(
    [memory.redisUrl, memory.role, memory.redisPrefix, memory.fleetLockMs],
    [undefined, 'all', 'iu', 30_000],
  )
  const fleet = loadConfig({
    REDIS_URL: 'redis://user:secret@redis.internal:6380/2',
    ROLE: 'worker',
    REDIS_PREFIX: 'prod:eu',
    FLEET_LOCK_MS: '5000',
  })
  assert.deepEqual(
    [fleet.redisUrl, fleet.role, fleet.redisPrefix, fleet.fleetLockMs],
    ['redis://user:secret@redis.internal:6380/2', 'worker', 'prod:eu', 5000],
  )
  assert.throws(
    () =>
      loadConfig({
        REDIS_URL: 'http://redis:6379',
        ROLE: 'everything',
        REDIS_PREFIX: 'a b',
        FLEET_LOCK_MS: '10',
      }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError)
      assert.deepEqual(error.problems, [
        'Expected `REDIS_URL` to be a redis:// or rediss:// URL, got `http://redis:6379`',
        'Expected `ROLE` to be all, api or worker, got `everything`',
        'Expected `REDIS_PREFIX` to be 1 to 64 letters, digits or `_.:-`, got `a b`',
        'Expected `FLEET_LOCK_MS` to be an integer from 1000 to 3600000, got `10`',
      ])
      return true
    },
  )
  assert.throws(() => loadConfig({ ROLE: 'api' }), /Expected `REDIS_URL` with `ROLE=api`/)
})
