// `node --import ./test/support/record-module-loads.mjs`: appends the URL of every module the
// process resolves to the file MODULE_LOAD_LOG names, so a test can tell what an app loaded.
import { register } from 'node:module'

register('./record-module-loads-hooks.mjs', import.meta.url)
