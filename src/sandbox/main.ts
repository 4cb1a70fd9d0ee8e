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

/** The sandbox and its port, from the command line; it listens once the signals are handled. */
function create(): { sandbox: Sandbox; port: number; host: string } {
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
  return { sandbox, port: integerArg('port', values.port, 3001), host: values.host }
}

try {
  const { sandbox, port, host } = create()
  let closing = false
  const shutdown = () => {
    if (closing) return
    closing = true
    sandbox.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  // Before the line that tells it is up: a signal sent on reading it closes, never kills.
  process.once('SIGTERM', shutdown)
  process.once('SIGINT', shutdown)
  const url = await sandbox.listen(port, host)
  process.stdout.write(`Imgur sandbox listening on ${url}\n`)
} catch (error) {
  process.stderr.write(`imgur sandbox: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(2)
}
