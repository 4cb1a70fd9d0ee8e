/**
 * The conversion phase: large realistic photographs (lossy WebP, AVIF, a HEVC HEIC) and a few
 * graphics (lossless and transparent WebP) go through the service, and in the same round through
 * sharp alone: decode and the same encoding the service chose, as many at once as
 * CONVERT_CONCURRENCY, with the same libvips threads per image. The ratio of the two wall times is
 * what the service's download, queue, conversion choices and upload cost on top of the codec work.
 * The machine may be shared: each round mirrors its runs, and the figures are medians of rounds.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import heic from 'heic-decode'
import sharp, { type Sharp } from 'sharp'
import { request } from 'undici'
import { asJpeg, asPng } from '../src/convert/fit.ts'
import { threadsPerImage } from '../src/convert/limits.ts'
import type { Context } from './phases.ts'
import { sampleRss } from './phases.ts'
import type { Material } from './photos.ts'
import { variant } from './photos.ts'
import { cpuMs } from './processes.ts'
import { type Figures, median } from './report.ts'

/** Means of a round's two runs of each side; `ratio` is sharp alone's time ÷ the service's. */
export type ConversionRound = {
  serviceMs: number
  directMs: number
  ratio: number
  peakRss: number
  cpuMsPerItem: { service: number; direct: number }
}

/** What the service made of each file, in the last round. */
type Outcome = { name: string; from: string; to: string; inBytes: number; bytes: number; reencoded: boolean }

/** sharp alone: decode, then the encoding the service chose (PNG or JPEG, as fit.ts sets them). */
async function direct(bytes: Buffer, mime: string, to: string): Promise<number> {
  let image: Sharp
  if (mime === 'image/heic') {
    // The prebuilt libvips cannot decode HEVC: libheif in WebAssembly, as the service's worker does.
    const { width, height, data } = await heic({ buffer: bytes })
    const pixels = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    image = sharp(pixels, { raw: { width, height, channels: 4 } })
  } else image = sharp(bytes, { autoOrient: true, failOn: 'error' })
  const step = to === 'image/png' ? asPng : asJpeg(90)
  return (await step.apply(image).toBuffer()).length
}

async function directRun(files: Array<{ bytes: Buffer; mime: string; to: string }>, concurrency: number) {
  const started = performance.now()
  let next = 0
  const loop = async () => {
    for (let i = next++; i < files.length; i = next++) {
      const file = files[i] as (typeof files)[number]
      await direct(file.bytes, file.mime, file.to)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop))
  return performance.now() - started
}

/** One job of every file (distinct bytes each round: the service uploads identical bytes once). */
async function serviceRun({ api, fakes }: Context, names: string[]) {
  const started = Date.now()
  const { jobId } = await api.submit(names.map((name) => `${fakes.origin}/files/${name}`))
  const done = await api.waitJobs([jobId], 100)
  if (done.failed > 0) throw new Error(`${done.failed} conversions failed (${done.reasons.join(', ')})`)
  const { items } = await api.status(jobId)
  // What was uploaded, read back from the sandbox before its uploads are freed.
  const sizes = await Promise.all(
    items.map(async (item) => (await request(item.link ?? '')).body.arrayBuffer().then((b) => b.byteLength)),
  )
  await fakes.reset()
  const outputs = items.map((item, i) => ({
    to: item.converted?.to ?? '',
    bytes: sizes[i] as number,
    reencoded: item.reencoded !== undefined,
  }))
  return { ms: done.finished - started, outputs }
}

export async function conversion(
  ctx: Context,
  materials: Material[],
): Promise<{ figures: Figures['conversion']; rounds: ConversionRound[]; outcomes: Outcome[] }> {
  const { params, fakes, service, log } = ctx
  const concurrency = params.convertConcurrency
  const threads = threadsPerImage(concurrency)
  sharp.concurrency(threads)
  const dir = join(tmpdir(), `imgur-bench-files-${process.pid}`)
  mkdirSync(dir, { recursive: true })
  await fakes.files(dir)
  try {
    // The service loads sharp on its first conversion, and the HEIC decoder on its first HEIC.
    const warm = materials.filter((m, i) => i === 0 || m.mime === 'image/heic')
    for (const m of warm) writeFileSync(join(dir, `warm-${m.name}`), variant(m, -1))
    await serviceRun(
      ctx,
      warm.map((m) => `warm-${m.name}`),
    )
    await directRun(
      warm.map((m) => ({ bytes: m.bytes, mime: m.mime, to: 'image/jpeg' })),
      concurrency,
    )

    const measureService = async (round: number, run: number) => {
      // Distinct bytes for every run: the service uploads identical bytes only once.
      const names = materials.map((m) => `r${round}-${run}-${m.name}`)
      for (const [i, m] of materials.entries())
        writeFileSync(join(dir, names[i] as string), variant(m, round * 2 + run))
      const stop = sampleRss(service)
      const cpu = cpuMs(service.pid)
      const result = await serviceRun(ctx, names)
      const measured = { ms: result.ms, peakRss: stop().rss, cpu: cpuMs(service.pid) - cpu }
      for (const name of names) rmSync(join(dir, name), { force: true })
      return { ...measured, outputs: result.outputs }
    }
    const measureDirect = async (chosen: string[]) => {
      const cpu = process.cpuUsage()
      const ms = await directRun(
        materials.map((m, i) => ({ bytes: m.bytes, mime: m.mime, to: chosen[i] as string })),
        concurrency,
      )
      const used = process.cpuUsage(cpu)
      return { ms, cpu: (used.user + used.system) / 1000 }
    }

    type Measured = { ms: number; cpu: number; peakRss?: number }
    const mean = (runs: Measured[], key: 'ms' | 'cpu') =>
      runs.reduce((sum, r) => sum + r[key], 0) / runs.length
    const rounds: ConversionRound[] = []
    let outputs: Awaited<ReturnType<typeof serviceRun>>['outputs'] = []
    for (let round = 0; round < params.rounds; round += 1) {
      // Each round runs both twice, mirrored (service, alone, alone, service, or the other way
      // round), so a machine getting busier or quieter during the round weighs on both alike.
      // sharp alone needs the service's choices: the first round starts with the service.
      const order = round % 2 === 0 ? [true, false, false, true] : [false, true, true, false]
      const service: Measured[] = []
      const alone: Measured[] = []
      for (const serviceTurn of order) {
        if (serviceTurn) {
          const measured = await measureService(round, service.length)
          outputs = measured.outputs
          service.push(measured)
        } else alone.push(await measureDirect(outputs.map((o) => o.to)))
      }
      const r: ConversionRound = {
        serviceMs: mean(service, 'ms'),
        directMs: mean(alone, 'ms'),
        ratio: mean(alone, 'ms') / mean(service, 'ms'),
        peakRss: Math.max(...service.map((m) => m.peakRss ?? 0)),
        cpuMsPerItem: {
          service: mean(service, 'cpu') / materials.length,
          direct: mean(alone, 'cpu') / materials.length,
        },
      }
      rounds.push(r)
      const times = (runs: Measured[]) => runs.map((m) => m.ms.toFixed(0)).join(' + ')
      log(
        `  round ${round + 1}: service ${times(service)} ms, sharp alone ${times(alone)} ms, ratio ${r.ratio.toFixed(3)}, ` +
          `peak RSS ${(r.peakRss / 2 ** 20).toFixed(1)} MB; CPU ms/item service ${r.cpuMsPerItem.service.toFixed(0)}, sharp alone ${r.cpuMsPerItem.direct.toFixed(0)}`,
      )
    }
    const outcomes: Outcome[] = materials.map((m, i) => ({
      name: m.name,
      from: m.mime,
      inBytes: m.bytes.length,
      ...(outputs[i] as (typeof outputs)[number]),
    }))
    const count = (to: string) => outcomes.filter((o) => o.to === to).length
    return {
      rounds,
      outcomes,
      figures: {
        items: materials.length,
        megapixels: await totalMegapixels(materials),
        convertConcurrency: concurrency,
        threadsPerImage: threads,
        serviceMs: median(rounds.map((r) => r.serviceMs)),
        directMs: median(rounds.map((r) => r.directMs)),
        ratio: median(rounds.map((r) => r.ratio)),
        peakRss: Math.max(...rounds.map((r) => r.peakRss)),
        cpuMsPerItem: {
          service: median(rounds.map((r) => r.cpuMsPerItem.service)),
          direct: median(rounds.map((r) => r.cpuMsPerItem.direct)),
        },
        outputs: {
          jpeg: count('image/jpeg'),
          png: count('image/png'),
          reencoded: outcomes.filter((o) => o.reencoded).length,
          inBytes: outcomes.reduce((sum, o) => sum + o.inBytes, 0),
          outBytes: outcomes.reduce((sum, o) => sum + o.bytes, 0),
        },
      },
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function totalMegapixels(materials: Material[]): Promise<number> {
  let pixels = 0
  for (const m of materials) {
    const meta = await sharp(m.bytes).metadata()
    pixels += meta.width * meta.height
  }
  return pixels / 1e6
}
