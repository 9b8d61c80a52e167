import { readdir, readFile, writeFile } from 'node:fs/promises'

/**
 * Readings from /proc (Linux): a process's peak memory and CPU time, and the whole machine's CPU
 * time. Cheap enough to take every second while a scenario runs.
 */

/** Clock ticks per second of /proc/<pid>/stat and /proc/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100

export interface ProcessReading {
  /** VmHWM: the highest resident set size the process has had, in MB. */
  peakRssMb: number
  /** utime + stime (+ cutime + cstime: children it has reaped, e.g. PostgreSQL's backends), seconds. */
  cpuSeconds: number
}

/** Undefined once the process is gone. */
export async function readProcess(pid: number): Promise<ProcessReading | undefined> {
  try {
    const [status, stat] = await Promise.all([
      readFile(`/proc/${pid}/status`, 'utf8'),
      readFile(`/proc/${pid}/stat`, 'utf8'),
    ])
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
    return { peakRssMb: Math.round(kb / 1024), cpuSeconds: cpuSecondsOf(stat) }
  } catch {
    return undefined
  }
}

/**
 * Resets VmHWM to the current RSS (`5` into /proc/<pid>/clear_refs), for a process that outlives a
 * scenario (the bench's Redis): its peak is then the scenario's own. Best effort.
 */
export async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => {})
}

/** utime, stime, cutime, cstime: fields 14–17, counted after the command name, which may hold spaces. */
export function cpuSecondsOf(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0)
  return ticks / TICKS_PER_SECOND
}

/** Every process whose command name (/proc/<pid>/comm) is `name`: e.g. all of PostgreSQL's. */
export async function pidsNamed(name: string): Promise<number[]> {
  const pids: number[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '')
    if (comm.trim() === name) pids.push(Number(entry))
  }
  return pids
}

/** CPU seconds of every process named `name` together (a shared server of many processes). */
export async function cpuSecondsOfAll(name: string): Promise<number> {
  const readings = await Promise.all((await pidsNamed(name)).map(readProcess))
  return readings.reduce((sum, r) => sum + (r?.cpuSeconds ?? 0), 0)
}

/** The machine's busy CPU seconds (all cores, everything but idle and iowait) so far. */
export async function machineBusySeconds(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? ''
  const ticks = line.trim().split(/\s+/).slice(1).map(Number)
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0)
  const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0)
  return (total - idle) / TICKS_PER_SECOND
}
