/** The calls the benchmark makes to the service's HTTP API, over one keep-alive agent. */
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import type { StatusDocument } from '../src/http/schemas.ts'

export type JobStatusBody = StatusDocument

export function createApi(url: string) {
  const agent = new Agent({ keepAliveTimeout: 30_000 })

  async function submit(urls: string[]): Promise<{ jobId: string; ms: number }> {
    const body = JSON.stringify({ urls })
    const started = performance.now()
    const response = await request(`${url}/v1/images/upload`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    const text = await response.body.text()
    const ms = performance.now() - started
    if (response.statusCode !== 202)
      throw new Error(`POST /v1/images/upload answered ${response.statusCode}: ${text}`)
    return { jobId: (JSON.parse(text) as { jobId: string }).jobId, ms }
  }

  async function status(jobId: string): Promise<JobStatusBody> {
    const response = await request(`${url}/v1/images/upload/${jobId}`, { dispatcher: agent })
    const text = await response.body.text()
    if (response.statusCode !== 200) throw new Error(`GET status answered ${response.statusCode}: ${text}`)
    return JSON.parse(text) as JobStatusBody
  }

  /** The status document's bytes as the route sends them (the reference server answers the same). */
  async function statusBytes(jobId: string): Promise<Buffer> {
    const response = await request(`${url}/v1/images/upload/${jobId}`, { dispatcher: agent })
    const bytes = Buffer.from(await response.body.arrayBuffer())
    if (response.statusCode !== 200) throw new Error(`GET status answered ${response.statusCode}`)
    return bytes
  }

  /** One status read, timed from request to last byte (the body is not parsed). */
  async function timedStatus(jobId: string): Promise<number> {
    const started = performance.now()
    const response = await request(`${url}/v1/images/upload/${jobId}`, { dispatcher: agent })
    await response.body.dump({ limit: Number.POSITIVE_INFINITY })
    const ms = performance.now() - started
    if (response.statusCode !== 200) throw new Error(`GET status answered ${response.statusCode}`)
    return ms
  }

  /**
   * Waits for every job to complete, reading one job at a time every `everyMs` (jobs take turns in
   * the service, so they finish close together). The finish time is the service's own `finished`
   * stamp, so polling sparingly costs no precision.
   */
  async function waitJobs(
    jobIds: string[],
    everyMs: number,
  ): Promise<{ finished: number; complete: number; failed: number; reasons: string[] }> {
    let finished = 0
    let complete = 0
    let failed = 0
    const reasons = new Set<string>()
    for (const jobId of jobIds) {
      for (;;) {
        const job = await status(jobId)
        if (job.status === 'complete') {
          finished = Math.max(finished, Date.parse(job.finished ?? ''))
          complete += job.uploaded.complete.length
          failed += job.uploaded.failed.length
          for (const item of job.items) if (item.reason) reasons.add(item.reason.code)
          break
        }
        await sleep(everyMs)
      }
    }
    return { finished, complete, failed, reasons: [...reasons] }
  }

  return { submit, status, statusBytes, timedStatus, waitJobs, close: () => agent.close() }
}

export type Api = ReturnType<typeof createApi>
