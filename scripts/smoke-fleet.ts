/**
 * The fleet part of the container smoke test (scripts/docker-smoke.sh), run once compose.yaml's
 * `fleet` profile is up. Serves real images from a fake origin that the replicas reach at
 * `<origin-host>` (the Compose network's gateway) and, talking to the load balancer only, checks:
 * - a job completes, its status stream arrives event by event, and its links open;
 * - status reads answered by different replicas agree, and GET /v1/images lists the links;
 * - at least two replicas worked on the job (their logs say which items each completed);
 * - a second job still completes when a replica is stopped (`docker-compose stop`) while it works
 *   on it: its items go back to the queue and the others finish them; no read fails or goes back.
 * The sandbox must delay each upload (FLEET_SANDBOX_LATENCY_MS, 2 s) and the replicas hand their
 * items back at once (SHUTDOWN_TIMEOUT_MS=1000), so that jobs last long enough to watch.
 * Usage: node scripts/smoke-fleet.ts <lb-url> <origin-host> <compose-project>
 * (SMOKE_SUDO=1 runs docker and docker-compose through sudo.)
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { StatusDocument } from '../src/http/schemas.ts'
import { startOrigin } from '../test/helpers/origin.ts'
import { until } from './until.ts'

const [lb, originHost, project] = process.argv.slice(2)
if (!lb || !originHost || !project) {
  throw new Error('usage: node scripts/smoke-fleet.ts <lb-url> <origin-host> <compose-project>')
}
const REPLICAS = ['replica-1', 'replica-2', 'replica-3']
const STOPPED = 'replica-2'

/** Asynchronous, so that the origin in this process keeps serving while docker runs. */
async function run(command: string, ...args: string[]): Promise<string> {
  const [file, ...rest] = process.env.SMOKE_SUDO ? ['sudo', command, ...args] : [command, ...args]
  return (
    await promisify(execFile)(file as string, rest, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  ).stdout.trim()
}
const compose = (...args: string[]) => run('docker-compose', '-p', project, '--profile', 'fleet', ...args)

/** The fleet's containers by service (Compose labels them; asking docker is faster than docker-compose). */
const containers = new Map<string, string>()
const running = await run(
  'docker',
  'ps',
  '--filter',
  `label=com.docker.compose.project=${project}`,
  '--format',
  '{{.Label "com.docker.compose.service"}} {{.ID}}',
)
for (const line of running.split('\n')) {
  const [service, id] = line.split(' ')
  if (service && id) containers.set(service, id)
}
const replicaAt = new Map<string, string>()
for (const name of REPLICAS) {
  const id = containers.get(name)
  assert.ok(id, `${name} is running`)
  const ip = await run(
    'docker',
    'inspect',
    '-f',
    '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
    id,
  )
  replicaAt.set(`${ip}:3000`, name)
}

/** The replica that answered: the last address nginx tried, from its X-Served-By header. */
function servedBy(response: Response): string {
  const tried = response.headers.get('x-served-by') ?? ''
  return replicaAt.get(tried.split(',').at(-1)?.trim() ?? '') ?? `an unknown upstream (${tried})`
}

async function submit(urls: string[]): Promise<string> {
  const response = await fetch(`${lb}/v1/images/upload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ urls }),
  })
  assert.equal(response.status, 202, await response.clone().text())
  return ((await response.json()) as { jobId: string }).jobId
}

async function status(jobId: string): Promise<{ job: StatusDocument; replica: string }> {
  const response = await fetch(`${lb}/v1/images/upload/${jobId}`)
  assert.equal(response.status, 200, `a status read answered by ${servedBy(response)}`)
  return { job: (await response.json()) as StatusDocument, replica: servedBy(response) }
}

async function listed(): Promise<string[]> {
  const response = await fetch(`${lb}/v1/images`)
  assert.equal(response.status, 200)
  return ((await response.json()) as { uploaded: string[] }).uploaded
}

/** The status events of the job's stream, each with the time it arrived here. */
async function streamed(jobId: string): Promise<Array<{ at: number; job: StatusDocument }>> {
  const response = await fetch(`${lb}/v1/images/upload/${jobId}/events`)
  assert.equal(response.status, 200)
  assert.ok(response.body)
  const events: Array<{ at: number; job: StatusDocument }> = []
  let buffer = ''
  for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
    const parts = (buffer + chunk).split('\n\n')
    buffer = parts.pop() ?? ''
    for (const part of parts) {
      const data = /^event: status\ndata: (.*)$/m.exec(part)?.[1]
      if (data !== undefined) events.push({ at: Date.now(), job: JSON.parse(data) as StatusDocument })
    }
  }
  return events
}

async function checkLinks(job: StatusDocument, count: number): Promise<void> {
  assert.deepEqual(job.uploaded.failed, [], 'no URL failed')
  assert.equal(job.uploaded.complete.length, count)
  for (const link of job.uploaded.complete) {
    const image = await fetch(link)
    assert.equal(image.status, 200, link)
    assert.match(String(image.headers.get('content-type')), /^image\//, link)
  }
  const links = await listed()
  for (const link of job.uploaded.complete) assert.ok(links.includes(link), `GET /v1/images lists ${link}`)
}

/** How many items of the job each replica logged as complete. */
async function completedBy(jobId: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  for (const name of REPLICAS) {
    const id = containers.get(name) as string
    for (const line of (await run('docker', 'logs', id)).split('\n')) {
      const entry = JSON.parse(line.startsWith('{') ? line : '{}') as { msg?: string; jobId?: string }
      if (entry.msg === 'item complete' && entry.jobId === jobId)
        counts.set(name, (counts.get(name) ?? 0) + 1)
    }
  }
  return counts
}

/** Items a replica works on now, from its own /health (asked inside its container). */
async function activeOn(name: string): Promise<number> {
  const script =
    "fetch('http://127.0.0.1:3000/health').then((r) => r.json()).then((h) => console.log(h.workers.active))"
  return Number(await run('docker', 'exec', containers.get(name) as string, 'node', '-e', script))
}

const show = (counts: Map<string, number>) => [...counts].map(([name, n]) => `${name} ${n}`).join(', ')

const origin = await startOrigin({ host: originHost })
try {
  await until(
    'the load balancer to answer /ready',
    30,
    async () => (await fetch(`${lb}/ready`)).ok || undefined,
  )

  const first = ['/img/1.png', '/img/2.jpg', '/img/3.gif', '/apng.png', '/img/4.png', '/img/5.jpg']
  const jobId = await submit(first.map((path) => `${origin.url}${path}`))
  const events = streamed(jobId)
  const { job } = await until('the first job to complete', 60, async () => {
    const read = await status(jobId)
    return read.job.status === 'complete' ? read : undefined
  })
  await checkLinks(job, first.length)
  const stream = await events
  const [opened, closed] = [stream.at(0), stream.at(-1)]
  assert.ok(opened && closed, 'the status stream sent events')
  assert.equal(closed.job.status, 'complete')
  assert.deepEqual(closed.job.uploaded, job.uploaded)
  // Buffered by the proxy, every event would arrive at once when the stream ends.
  assert.ok(closed.at - opened.at >= 500, `the stream's events arrived over ${closed.at - opened.at} ms`)

  const answered = new Set<string>()
  for (let read = 0; read < 6; read++) {
    const again = await status(jobId)
    assert.deepEqual(again.job, job, `the status read from ${again.replica} differs`)
    answered.add(again.replica)
  }
  assert.ok(answered.size >= 2, `status reads were answered by ${[...answered].join(', ')} only`)
  const workers = await completedBy(jobId)
  assert.ok(workers.size >= 2, `items were completed by ${show(workers)} only`)
  console.log(
    `fleet job ${jobId}: ${first.length} links open and listed; ${stream.length} status events over ` +
      `${closed.at - opened.at} ms; equal reads from ${[...answered].sort().join(', ')}; items by ${show(workers)}`,
  )

  const second = Array.from(
    { length: 24 },
    (_, i) => `${origin.url}/img/${100 + i}.${['png', 'jpg', 'gif'][i % 3]}`,
  )
  const stopJobId = await submit(second)
  await until(`${STOPPED} to work on an item`, 30, async () => (await activeOn(STOPPED)) > 0 || undefined)
  const stopped = compose('stop', STOPPED)
  // Awaited once the job is complete; a failure to stop is reported then, not as an unhandled rejection.
  stopped.catch(() => {})
  // until() takes a throw for "not yet": failed or backward reads are collected and checked after.
  const problems: string[] = []
  let finished = 0
  const { job: survived } = await until('the second job to complete', 120, async () => {
    const read = await status(stopJobId).catch((error: unknown) => void problems.push(String(error)))
    if (read === undefined) return undefined
    const now = read.job.uploaded.complete.length + read.job.uploaded.failed.length
    if (now < finished) problems.push(`${read.replica} said ${now} items finished after ${finished}`)
    finished = Math.max(finished, now)
    return read.job.status === 'complete' ? read : undefined
  })
  assert.deepEqual(problems, [], 'every status read answers, and none goes back, while a replica stops')
  await stopped
  const id = containers.get(STOPPED) as string
  assert.equal(await run('docker', 'inspect', '-f', '{{.State.ExitCode}}', id), '0', `${STOPPED} exit code`)
  assert.match(await run('docker', 'logs', id), /"msg":"stopped"/, `${STOPPED} logged "stopped"`)
  await checkLinks(survived, second.length)
  const handedBack = survived.items.filter((item) => item.attempts >= 2).length
  assert.ok(handedBack >= 1, `no item was taken up again after ${STOPPED} stopped`)
  const after = await completedBy(stopJobId)
  console.log(
    `fleet job ${stopJobId}: complete with ${STOPPED} stopped mid-job (exit 0); ${handedBack} items ` +
      `taken up again; items by ${show(after)}; ${second.length} links open and listed`,
  )
} finally {
  await origin.close()
}
