/**
 * Reads one number from an app's GET /metrics (Prometheus text): the sum of the series of `name`
 * whose labels include `labels` (e.g. `store="postgres"`). 0 when there is no such series yet.
 */
export async function readMetric(url: string, name: string, labels = ''): Promise<number> {
  const response = await fetch(url)
  if (!response.ok) throw new Error(`${url}: ${response.status}`)
  const text = await response.text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (rest[0] !== ' ' && rest[0] !== '{') continue
    if (labels && !rest.includes(labels)) continue
    sum += Number(rest.slice(rest.lastIndexOf(' ') + 1))
  }
  return sum
}
