/** Error paths in the style `points[17].data.humidity`; names that are not identifiers get `["…"]`. */
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

export function keyPath(base: string, key: string): string {
  const segment = IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
  if (!base) return segment.startsWith('.') ? segment.slice(1) : segment
  return base + segment
}

export const indexPath = (base: string, index: number) => `${base}[${index}]`

/** The path of the request body itself. */
export const BODY = '(body)'
