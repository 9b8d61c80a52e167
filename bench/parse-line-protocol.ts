/**
 * Micro-benchmark of the line protocol parser: bodies of 5,000 Telegraf-like lines (a measurement,
 * three tags, five fields of every type, a nanosecond timestamp), parsed over and over.
 *
 *   pnpm bench:line-protocol [--lines 5000] [--seconds 5]
 *
 * Prints lines/s and MB/s of text for the plain lines and for lines full of escapes.
 */
import { parseArgs } from 'node:util'
import { parseLineProtocol } from '@iotflow/contracts'

const { values: args } = parseArgs({
  options: { lines: { type: 'string', default: '5000' }, seconds: { type: 'string', default: '5' } },
})
const LINES = Number(args.lines)
const SECONDS = Number(args.seconds)
const START_NS = 1_700_000_000_000_000_000n

function body(escaped: boolean): string {
  const lines: string[] = []
  for (let i = 0; i < LINES; i++) {
    const ns = START_NS + BigInt(i) * 1_000_000n
    lines.push(
      escaped
        ? `sensor\\ room,site\\,id=north\\ 1,host=edge\\=7,rack=r${i % 40} temp\\ c=${20 + (i % 10) / 10},count=${i}i,up=${i}u,ok=t,note="say \\"hi\\" \\\\ ${i}" ${ns}`
        : `sensor,site=north,host=edge-7,rack=r${i % 40} temp=${20 + (i % 10) / 10},count=${i}i,up=${i}u,ok=t,note="reading ${i}" ${ns}`,
    )
  }
  return lines.join('\n')
}

function measure(name: string, text: string) {
  // Warm-up, so the figure is the optimised code's.
  for (let i = 0; i < 20; i++) parseLineProtocol(text)
  let parsed = 0
  const started = performance.now()
  while (performance.now() - started < SECONDS * 1000) {
    const result = parseLineProtocol(text)
    if (!result.ok) throw new Error(result.message)
    parsed += result.points.length
  }
  const elapsed = (performance.now() - started) / 1000
  const bytes = (Buffer.byteLength(text) * parsed) / LINES
  console.log(
    `${name}: ${Math.round(parsed / elapsed).toLocaleString('en')} lines/s, ` +
      `${(bytes / elapsed / 1e6).toFixed(1)} MB/s (${LINES}-line bodies, ${SECONDS} s)`,
  )
}

measure('plain lines  ', body(false))
measure('escaped lines', body(true))
