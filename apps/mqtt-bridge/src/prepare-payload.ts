export type PreparedPayload =
  | { apiKey?: string; body: unknown }
  | { problem: { path: string; message: string } }

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * What MQTT adds to the HTTP body shapes: the device's `api_key` as a top-level property (taken
 * out before validation, which refuses unknown properties), and the topic's further level as the
 * `type` of every point that does not name one. The body is copied, never changed in place.
 */
export function preparePayload(value: unknown, topicType: string | undefined): PreparedPayload {
  let body = value
  let apiKey: string | undefined
  if (isObject(value) && Object.hasOwn(value, 'api_key')) {
    const { api_key: key, ...rest } = value
    if (typeof key !== 'string' || key.length === 0) {
      return { problem: { path: 'api_key', message: 'must be a non-empty string' } }
    }
    apiKey = key
    body = rest
  }
  if (topicType !== undefined) body = withType(body, topicType)
  return apiKey === undefined ? { body } : { apiKey, body }
}

function withType(body: unknown, type: string): unknown {
  const typed = (point: unknown) =>
    isObject(point) && !Object.hasOwn(point, 'type') ? { ...point, type } : point
  if (Array.isArray(body)) return body.map(typed)
  if (isObject(body) && Array.isArray(body.points)) return { ...body, points: body.points.map(typed) }
  return typed(body)
}
