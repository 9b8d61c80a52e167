/**
 * The bridge's topics, under a root (`iotflow` by default, so `iotflow/devices/42/telemetry`):
 * devices publish to `{root}/devices/{id}/telemetry` or `{root}/devices/{id}/telemetry/{type}`,
 * and refused messages are answered on `{root}/devices/{id}/errors`.
 */
export function subscriptionTopics(root: string, shareGroup: string): string[] {
  return [
    `$share/${shareGroup}/${root}/devices/+/telemetry`,
    `$share/${shareGroup}/${root}/devices/+/telemetry/+`,
  ]
}

export interface TelemetryTopic {
  /** The id level exactly as published (the errors topic echoes it). */
  deviceLevel: string
  /** The device id, or null when the level is not a device id. */
  deviceId: number | null
  /** The further level (`/telemetry/sensors` → `sensors`), kept as the points' type. */
  type?: string
}

const DEVICE_ID = /^[1-9][0-9]{0,14}$/

/** Null when the topic is not a telemetry topic under `root` (the subscription never yields one). */
export function parseTelemetryTopic(root: string, topic: string): TelemetryTopic | null {
  const prefix = `${root}/devices/`
  if (!topic.startsWith(prefix)) return null
  const [deviceLevel, telemetry, type, ...rest] = topic.slice(prefix.length).split('/')
  if (deviceLevel === undefined || telemetry !== 'telemetry' || rest.length > 0) return null
  const deviceId = DEVICE_ID.test(deviceLevel) ? Number(deviceLevel) : null
  return type === undefined ? { deviceLevel, deviceId } : { deviceLevel, deviceId, type }
}

export const errorTopic = (root: string, deviceLevel: string) => `${root}/devices/${deviceLevel}/errors`
