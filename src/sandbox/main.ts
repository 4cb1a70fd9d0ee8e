/**
 * Standalone Imgur sandbox:
 * `node src/sandbox/main.ts [--port 3001] [--host 127.0.0.1] [--public-url URL] [--latency-ms N]`.
 * Prints one line with its URL; closes on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util'
import { createSandbox, type Sandbox } from './sandbox.ts'

function integerArg(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed)) {
    throw new TypeError(`Expected \`--${name}\` to be an integer >= 0, got \`${value}\``)
  }
  return parsed
}

async function start(): Promise<Sandbox> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '3001' },
      host: { type: 'string', default: '127.0.0.1' },
      'public-url': { type: 'string' },
      'latency-ms': { type: 'string' },
    },
    strict: true,
  })
  const sandbox = createSandbox({
    ...(values['public-url'] === undefined ? {} : { publicUrl: values['public-url'] }),
    latencyMs: integerArg('latency-ms', values['latency-ms'], 0),
  })
  const url = await sandbox.listen(integerArg('port', values.port, 3001), values.host)
  process.stdout.write(`Imgur sandbox listening on ${url}\n`)
  return sandbox
}

try {
  const sandbox = await start()
  let closing = false
  const shutdown = () => {
    if (closing) return
    closing = true
    sandbox.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGTERM', shutdown)
  process.once('SIGINT', shutdown)
} catch (error) {
  process.stderr.write(`imgur sandbox: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(2)
}
