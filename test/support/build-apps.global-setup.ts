import { buildApps } from '../../infra/build/build-apps.js'

/** Tests run the apps as production does, from their build: built once, fresh, before any test. */
export default async function setup() {
  await buildApps()
}
