/** Said when a backup or a restore would overwrite what is there: nothing was done. */
export class RefusedError extends Error {
  override name = 'RefusedError'
}
