import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { freePort } from './private-server.js'

it('never hands out a port twice while its process lives, and reserves each for this process', async () => {
  // 300 of 12,000 ports at random would repeat one about 98 times in 100 without the reservations.
  const ports = await Promise.all(Array.from({ length: 300 }, () => freePort()))
  expect(new Set(ports).size).toBe(ports.length)
  const holders = await Promise.all(
    ports.slice(0, 5).map((port) => readFile(join(tmpdir(), 'iotflow-ports', String(port)), 'utf8')),
  )
  expect(holders).toEqual(holders.map(() => String(process.pid)))
})

it('takes over a port whose reserving process is gone', async () => {
  // A process that reserves ports and exits: its ports are free to take again.
  const script = `import { freePort } from ${JSON.stringify(new URL('./private-server.ts', import.meta.url).pathname)}
    const ports = []; for (let i = 0; i < 50; i++) ports.push(await freePort()); console.log(JSON.stringify(ports))`
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  })
  expect(child.status, child.stderr).toBe(0)
  const theirs: number[] = JSON.parse(child.stdout)
  const reservations = await Promise.all(
    theirs.map((port) => readFile(join(tmpdir(), 'iotflow-ports', String(port)), 'utf8')),
  )
  expect(reservations.every((pid) => pid === String(child.pid))).toBe(true)
  // Drawing until one of their ports comes up again: it must be handed out, to this process.
  const mine = new Set<number>()
  for (let i = 0; i < 3000 && !theirs.some((port) => mine.has(port)); i++) mine.add(await freePort())
  const retaken = theirs.find((port) => mine.has(port))
  expect(retaken).toBeDefined()
  expect(await readFile(join(tmpdir(), 'iotflow-ports', String(retaken)), 'utf8')).toBe(String(process.pid))
})
