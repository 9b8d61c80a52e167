import { setTimeout as sleep } from 'node:timers/promises'
import type { NodeProcess } from '../../test/support/app-process.js'

/** SIGTERM (the process's graceful shutdown), then SIGKILL if it is still there after 30 s. */
export async function stopProcess(child: NodeProcess): Promise<void> {
  const stopped = await Promise.race([child.stop('SIGTERM'), sleep(30_000).then(() => undefined)])
  if (!stopped) await child.stop('SIGKILL')
}
