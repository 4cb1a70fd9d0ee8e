/**
 * The command line from arguments to exit status: 0 when every image uploaded, 1 when some
 * failed (or the album asked for could not be made), 2 on usage errors, an unreachable service,
 * or a service that refused the job. After `cancel`, cancelled URLs count as done, not failed.
 * Results go to stdout; progress and diagnostics to stderr, so `> links.txt` captures only results.
 */
import type { StatusDocument } from '../http/schemas.ts'
import { type CliOptions, parseCli, USAGE, UsageError } from './args.ts'
import { awaitWebhook, cancelJob, followJob, ServiceProblem, submitJob } from './client.ts'
import { createApiKey, formatApiKey, KEYGEN_NOTE } from './keygen.ts'
import { counts, createProgress, formatReport } from './output.ts'

type Stream = { write(text: string): unknown; isTTY?: boolean; columns?: number }

export type Io = {
  argv: string[]
  env: Record<string, string | undefined>
  stdin: () => Promise<string>
  stdout: Stream
  stderr: Stream
}

export async function main({ argv, env, stdin, stdout, stderr }: Io): Promise<number> {
  try {
    const options = await parseCli(argv, env, stdin)
    if (options === 'help') {
      stdout.write(USAGE)
      return 0
    }
    if (options.command === 'keygen') {
      stdout.write(formatApiKey(createApiKey(options.name)))
      stderr.write(KEYGEN_NOTE)
      return 0
    }
    if (options.command === 'cancel') {
      const status = await awaitWebhook(options, await cancelJob(options, options.jobId))
      stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : formatReport(status))
      const { uploaded, failed, cancelled } = counts(status)
      const what = cancelled > 0 ? 'cancelled' : 'had nothing left to cancel'
      stderr.write(
        `job ${status.id} ${what}: ${uploaded} uploaded, ${cancelled} cancelled, ${failed - cancelled} failed\n`,
      )
      return exitStatus(status, failed - cancelled)
    }
    return await upload(options, stdout, stderr)
  } catch (error) {
    if (error instanceof UsageError) {
      stderr.write(`imgur-upload: ${error.message}\nRun imgur-upload --help for usage.\n`)
      return 2
    }
    if (error instanceof ServiceProblem) {
      stderr.write(`imgur-upload: ${error.message}\n`)
      return 2
    }
    throw error
  }
}

async function upload(
  options: Extract<CliOptions, { command: 'upload' }>,
  stdout: Stream,
  stderr: Stream,
): Promise<number> {
  const { urls, clientId, album, webhookUrl } = options
  const jobId = await submitJob(options, { urls, clientId, album, webhookUrl })
  stderr.write(`job ${jobId} submitted to ${options.server}\n`)
  const progress = createProgress(stderr)
  const followed = await followJob(options, jobId, (update) => progress.update(update))
  progress.end()
  const status = await awaitWebhook(options, followed)

  stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : formatReport(status))
  const { uploaded, failed, cancelled, total } = counts(status)
  const merged = urls.length - total
  const duplicates =
    merged > 0 ? `; ${merged} duplicate URL${merged === 1 ? ' was' : 's were'} sent once` : ''
  const stopped = cancelled > 0 ? ` (${cancelled} cancelled)` : ''
  stderr.write(`${uploaded} uploaded, ${failed} failed${stopped}${duplicates}\n`)
  return exitStatus(status, failed)
}

function exitStatus(status: StatusDocument, failed: number): number {
  return failed === 0 && status.album?.state !== 'failed' ? 0 : 1
}
