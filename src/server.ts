/** Process entry: read config, start the sandbox if needed, build the app, listen, drain on SIGTERM. */

import { randomUUID } from 'node:crypto'
import { type Config, ConfigError, loadConfig } from './config.ts'
import { buildApp } from './http/app.ts'
import { createLogger } from './log.ts'
import type { Sandbox } from './sandbox/sandbox.ts'
import { createService } from './service.ts'

let config: Config
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  process.stderr.write(`${error.message}\n`)
  process.exit(1)
}

const log = createLogger(config.logLevel)

let sandbox: Sandbox | undefined
if (config.imgurMode === 'sandbox') {
  // Loaded only in sandbox mode: with Imgur credentials set, its code would be resident for nothing.
  const { createSandbox } = await import('./sandbox/sandbox.ts')
  // A client id made fresh for each process: only this service can upload to its sandbox.
  const clientId = randomUUID()
  sandbox = createSandbox({
    clientIds: [clientId],
    maxBytes: config.sandboxMaxBytes,
    ...(config.sandboxPublicUrl === undefined ? {} : { publicUrl: config.sandboxPublicUrl }),
  })
  const listening = new URL(await sandbox.listen(config.sandboxPort, config.sandboxHost))
  // Listening on every interface, the sandbox is reached over loopback rather than at 0.0.0.0.
  if (['0.0.0.0', '[::]'].includes(listening.hostname)) listening.hostname = '127.0.0.1'
  const url = listening.origin
  config = Object.freeze({ ...config, imgurApiUrl: url, imgurClientId: clientId })
  log.warn(
    { imgurApiUrl: url, links: config.sandboxPublicUrl ?? sandbox.url },
    'SANDBOX MODE: no IMGUR_CLIENT_ID or IMGUR_API_URL is set, so uploads go to the built-in Imgur sandbox, not to Imgur',
  )
}
if (config.redisUrl !== undefined && config.imgurMode === 'sandbox') {
  log.warn(
    'FLEET IN SANDBOX MODE: each replica uploads to its own built-in sandbox, so an album made by another replica misses its images; give the fleet one shared sandbox (`npm run sandbox`, IMGUR_API_URL) or Imgur credentials',
  )
}
if (config.apiKeys.size === 0) {
  log.warn(
    { submitRateLimit: config.submitRateLimit, dailyUrlQuota: config.dailyUrlQuota },
    'OPEN ACCESS: API_KEYS is not set, so anyone who reaches the service may use /v1; limits apply per client IP',
  )
} else log.info({ apiKeys: [...config.apiKeys.keys()] }, 'API keys required on /v1')
if (config.fetchAllowPrivateNetworks) {
  log.warn('FETCH_ALLOW_PRIVATE_NETWORKS is on: downloads may reach loopback and private addresses')
}

const service = await createService(config, log)
const app = buildApp({ config, log, ...service })

let stopping = false
async function shutdown(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  log.info({ signal }, 'shutting down')
  const hardStop = setTimeout(() => {
    log.error('shutdown took too long; exiting')
    process.exit(1)
  }, config.shutdownTimeoutMs + 5000)
  hardStop.unref()
  await Promise.all([app.close(), service.close(Math.max(config.shutdownTimeoutMs - 1000, 0))])
  await sandbox?.close()
  log.info('stopped')
  process.exit(0)
}
// Before listening: a signal that arrives once the "listening" line is out must drain, not kill.
process.once('SIGTERM', () => void shutdown('SIGTERM'))
process.once('SIGINT', () => void shutdown('SIGINT'))
await app.listen({ port: config.port, host: config.host }).catch((error: unknown) => {
  // Closed by a signal while it was binding: the shutdown under way ends the process.
  if (!stopping) throw error
})
