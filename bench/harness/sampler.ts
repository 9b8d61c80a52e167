import { cpuSecondsOfAll, machineBusySeconds, readProcess, resetPeakRss } from './proc-stats.js'

/** A process of ours, watched for its peak memory and its CPU time. */
export interface WatchedProcess {
  name: string
  pid: number
  /** It ran before the scenario (the bench's Redis): its peak RSS is reset at the start. */
  resetPeak?: boolean
}

/** A shared server of many processes (PostgreSQL, InfluxDB): CPU of all its processes by name. */
export interface WatchedServer {
  name: string
  /** Its command name in /proc/<pid>/comm. */
  comm: string
}

/** A number read every second (Redis memory, points stored so far), kept with the time read. */
export interface Probe {
  name: string
  read: () => Promise<number>
}

export interface Sample {
  /** performance.now() */
  at: number
  value: number
}

interface CpuSnapshot {
  processes: Map<string, number>
  servers: Map<string, number>
  machine: number
  at: number
}

/**
 * Samples a scenario every second: the peak RSS (VmHWM) of each process, and each probe. CPU time is
 * read at the start and end of the measured window (first request until drained), so the startup of
 * the apps is not counted.
 */
export class Sampler {
  readonly peakRssMb = new Map<string, number>()
  readonly series = new Map<string, Sample[]>()
  private timer: NodeJS.Timeout | undefined
  private running = false
  private sampling: Promise<void> = Promise.resolve()
  private windowStart: CpuSnapshot | undefined
  private windowEnd: CpuSnapshot | undefined

  constructor(
    private readonly processes: WatchedProcess[],
    private readonly servers: WatchedServer[],
    private readonly probes: Probe[],
  ) {
    for (const probe of probes) this.series.set(probe.name, [])
  }

  async start(): Promise<void> {
    await Promise.all(this.processes.filter((p) => p.resetPeak).map((p) => resetPeakRss(p.pid)))
    this.running = true
    const tick = () => {
      if (!this.running) return
      this.sampling = this.sample().catch(() => {})
      this.timer = setTimeout(() => void this.sampling.then(tick), 1000)
    }
    tick()
  }

  async stop(): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
    await this.sampling
    await this.sample()
  }

  async markWindowStart(): Promise<void> {
    this.windowStart = await this.cpuSnapshot()
  }

  async markWindowEnd(): Promise<void> {
    this.windowEnd = await this.cpuSnapshot()
  }

  /** CPU seconds used in the window: ours by process name, shared servers, the machine. */
  cpuInWindow() {
    const start = this.windowStart
    const end = this.windowEnd
    if (!start || !end) throw new Error('the measured window was not marked')
    const delta = (a: Map<string, number>, b: Map<string, number>) =>
      new Map([...b].map(([name, seconds]) => [name, seconds - (a.get(name) ?? 0)]))
    return {
      wallSeconds: (end.at - start.at) / 1000,
      processes: delta(start.processes, end.processes),
      servers: delta(start.servers, end.servers),
      machine: end.machine - start.machine,
    }
  }

  private async sample(): Promise<void> {
    await Promise.all([
      ...this.processes.map(async ({ name, pid }) => {
        const reading = await readProcess(pid)
        if (reading) this.peakRssMb.set(name, Math.max(this.peakRssMb.get(name) ?? 0, reading.peakRssMb))
      }),
      ...this.probes.map(async (probe) => {
        const value = await probe.read().catch(() => undefined)
        if (value !== undefined) this.series.get(probe.name)?.push({ at: performance.now(), value })
      }),
    ])
  }

  private async cpuSnapshot(): Promise<CpuSnapshot> {
    const [processes, servers, machine] = await Promise.all([
      Promise.all(
        this.processes.map(async (p) => [p.name, (await readProcess(p.pid))?.cpuSeconds ?? 0] as const),
      ),
      Promise.all(this.servers.map(async (s) => [s.name, await cpuSecondsOfAll(s.comm)] as const)),
      machineBusySeconds(),
    ])
    return { processes: new Map(processes), servers: new Map(servers), machine, at: performance.now() }
  }
}
