import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { registerDeviceOverHttp } from '@iotflow/testkit'

/** A simulated device: what it needs to send (its id for MQTT topics, its key). */
export interface SimulatedDevice {
  id: number
  apiKey: string
  name: string
}

/**
 * The devices file: a `# gateway <url>` line, then one device a line, `<id> <api key> <name>`.
 * Plain lines, so that wrk's Lua script (bench/harness/wrk-telemetry.lua) reads it too.
 */
export async function writeDevicesFile(path: string, gatewayUrl: string, devices: SimulatedDevice[]) {
  await mkdir(dirname(path), { recursive: true })
  const lines = [`# gateway ${gatewayUrl}`, ...devices.map((d) => `${d.id} ${d.apiKey} ${d.name}`)]
  await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 })
}

export async function readDevicesFile(
  path: string,
): Promise<{ gatewayUrl?: string; devices: SimulatedDevice[] }> {
  const text = await readFile(path, 'utf8').catch(() => '')
  const gatewayUrl = /^# gateway (\S+)/m.exec(text)?.[1]
  const devices: SimulatedDevice[] = []
  for (const line of text.split('\n')) {
    const match = /^(\d+) (\S+) (\S+)$/.exec(line)
    if (match) devices.push({ id: Number(match[1]), apiKey: match[2] as string, name: match[3] as string })
  }
  return { gatewayUrl, devices }
}

/** Runs `task` over `items`, at most `limit` at once, keeping their order. */
export async function mapLimit<T, R>(
  items: T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
) {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await task(items[i] as T, i)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/** The name of the i-th device (from 0) of a fleet: `<prefix>-00001` … */
export const deviceName = (prefix: string, index: number) => `${prefix}-${String(index + 1).padStart(5, '0')}`

export interface FleetOptions {
  gatewayUrl: string
  adminToken: string
  count: number
  /** Devices are named by deviceName(namePrefix, i). */
  namePrefix: string
  devicesFile: string
}

/**
 * `count` devices on the gateway, reused from the devices file when their keys still work there,
 * else registered through the admin API. A device registered before whose key was lost (the file
 * deleted) gets a new key (rotate-key): keys are shown only once.
 */
export async function loadOrRegisterFleet(options: FleetOptions): Promise<SimulatedDevice[]> {
  const saved = await readDevicesFile(options.devicesFile)
  const reusable =
    saved.gatewayUrl === options.gatewayUrl &&
    saved.devices.length > 0 &&
    (await keyWorks(options.gatewayUrl, saved.devices[0] as SimulatedDevice))
  const known = new Map(reusable ? saved.devices.map((d) => [d.name, d]) : [])
  const names = Array.from(
    { length: options.count },
    (_, i) => `${options.namePrefix}-${String(i + 1).padStart(5, '0')}`,
  )
  const missing = names.filter((name) => !known.has(name))
  if (missing.length > 0) {
    console.log(`registering ${missing.length} device(s) through ${options.gatewayUrl} …`)
    await mapLimit(missing, 16, async (name) => {
      known.set(name, await registerOrRotate(options, name))
    })
    const all = [...known.values()].sort((a, b) => a.name.localeCompare(b.name))
    await writeDevicesFile(options.devicesFile, options.gatewayUrl, all)
  }
  return names.map((name) => known.get(name) as SimulatedDevice)
}

async function keyWorks(gatewayUrl: string, device: SimulatedDevice): Promise<boolean> {
  const response = await fetch(`${gatewayUrl}/api/v1/devices/status`, {
    headers: { 'x-api-key': device.apiKey },
  })
  await response.arrayBuffer()
  return response.ok
}

async function registerOrRotate(options: FleetOptions, name: string): Promise<SimulatedDevice> {
  try {
    const { id, apiKey } = await registerDeviceOverHttp(options.gatewayUrl, options.adminToken, name)
    return { id, apiKey, name }
  } catch (error) {
    if (!/^register \S+: 409/.test((error as Error).message)) throw error
  }
  const admin = { authorization: `Bearer ${options.adminToken}` }
  const list = await fetch(
    `${options.gatewayUrl}/api/v1/devices?search=${encodeURIComponent(name)}&per_page=500`,
    {
      headers: admin,
    },
  )
  const { devices } = (await list.json()) as { devices: { id: number; name: string }[] }
  const device = devices.find((d) => d.name === name)
  if (!device) throw new Error(`device ${name} exists but was not found by search`)
  const rotated = await fetch(`${options.gatewayUrl}/api/v1/devices/${device.id}/rotate-key`, {
    method: 'POST',
    headers: admin,
  })
  if (!rotated.ok) throw new Error(`rotate-key ${name}: ${rotated.status} ${await rotated.text()}`)
  const { api_key } = (await rotated.json()) as { api_key: string }
  return { id: device.id, apiKey: api_key, name }
}
