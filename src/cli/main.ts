/**
 * The command line from arguments to exit status: 0 when every image uploaded, 1 when some
 * failed, 2 on usage errors, an unreachable service, or a service that refused the job.
 * Results go to stdout; progress and diagnostics to stderr, so `> links.txt` captures only results.
 */
import { parseCli, USAGE, UsageError } from './args.ts'
import { followJob, ServiceProblem, submitJob } from './client.ts'
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
    const jobId = await submitJob(options, options.urls, options.clientId)
    stderr.write(`job ${jobId} submitted to ${options.server}\n`)
    const progress = createProgress(stderr)
    const status = await followJob(options, jobId, (update) => progress.update(update))
    progress.end()

    stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : formatReport(status))
    const { uploaded, failed, total } = counts(status)
    const merged = options.urls.length - total
    const duplicates =
      merged > 0 ? `; ${merged} duplicate URL${merged === 1 ? ' was' : 's were'} sent once` : ''
    stderr.write(`${uploaded} uploaded, ${failed} failed${duplicates}\n`)
    return failed === 0 ? 0 : 1
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
