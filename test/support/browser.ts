import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll } from 'vitest'

/** Where browser tests leave their screenshots (gitignored). */
export const ARTIFACTS_DIR = join(import.meta.dirname, '..', '..', 'test-artifacts')

/**
 * Debian's Chromium, headless, quiet: no sandbox (tests run as root), no network of its own.
 * Each launch gets a fresh temporary profile, removed when the browser closes.
 */
export async function launchBrowser(): Promise<Browser> {
  await mkdir(ARTIFACTS_DIR, { recursive: true })
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  })
}

export const artifactPath = (name: string) => join(ARTIFACTS_DIR, name)

/** For a browser test file: one Chromium for its tests, closed after them. */
export function useBrowser(): { browser: Browser } {
  const holder = {} as { browser: Browser }
  beforeAll(async () => {
    holder.browser = await launchBrowser()
  })
  afterAll(async () => {
    await holder.browser?.close()
  })
  return holder
}
