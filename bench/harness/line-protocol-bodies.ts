import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzip } from 'node:zlib'

const gzipAsync = promisify(gzip)

/** Gzipped line protocol bodies on disk, `1.gz` … `<count>.gz`, that wrk-telemetry.lua sends. */
export interface LineProtocolBodies {
  dir: string
  count: number
  linesPerBody: number
}

export interface LineProtocolBodiesPlan {
  dir: string
  count: number
  linesPerBody: number
  /** The first line's time; each line is 1 ms after the one before, across bodies too. */
  firstTimestampMs: number
}

/**
 * Writes bodies as Telegraf sends them to `outputs.influxdb_v2`: gzipped, nanosecond timestamps
 * (no `precision`), a measurement, Telegraf's `host` tag, float and integer fields. Body n is every
 * device's n-th request (the key says which device): its lines' timestamps follow those of body
 * n-1, 1 ms apart, so no two points of a device merge. Prepared before the load so that the client
 * spends no CPU compressing; one sequence for every device makes that 50 times cheaper.
 */
export async function writeLineProtocolBodies(plan: LineProtocolBodiesPlan): Promise<LineProtocolBodies> {
  await mkdir(plan.dir, { recursive: true })
  const fields = fieldVariants()
  for (let body = 0; body < plan.count; body++) {
    const lines: string[] = []
    const first = plan.firstTimestampMs + body * plan.linesPerBody
    for (let i = 0; i < plan.linesPerBody; i++) {
      const ms = first + i
      lines.push(`environment,host=edge-box ${fields[ms % fields.length]} ${ms}000000`)
    }
    await writeFile(join(plan.dir, `${body + 1}.gz`), await gzipAsync(`${lines.join('\n')}\n`))
  }
  return { dir: plan.dir, count: plan.count, linesPerBody: plan.linesPerBody }
}

/**
 * The same four readings as the JSON scenarios' points (wrk-telemetry.lua), so that the two
 * formats carry the same data: temperature and humidity as floats, battery and rssi as integers.
 */
function fieldVariants(): string[] {
  let seed = 1
  const random = () => {
    seed = (seed * 16807) % 2147483647
    return seed / 2147483647
  }
  return Array.from(
    { length: 64 },
    () =>
      `temperature=${(18 + random() * 8).toFixed(2)},humidity=${(35 + random() * 30).toFixed(1)},` +
      `battery=${20 + Math.floor(random() * 81)}i,rssi=${-95 + Math.floor(random() * 51)}i`,
  )
}
