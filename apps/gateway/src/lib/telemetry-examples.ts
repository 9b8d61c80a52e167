/**
 * Request examples for the telemetry routes, one per accepted body shape, as Swagger UI shows them
 * in its example picker ("Try it out" sends the chosen one as is).
 */
export const telemetryBodyExamples = {
  batch: {
    summary: 'A batch: {"points": [...]}',
    value: {
      points: [
        { timestamp: '2026-11-28T10:00:00Z', data: { temperature: 21.5, humidity: 50 } },
        { timestamp: '2026-11-28T10:01:00Z', data: { temperature: 21.7, humidity: 49.5 }, type: 'sensors' },
      ],
    },
  },
  point: {
    summary: 'One point',
    value: { timestamp: '2026-11-28T10:00:00Z', data: { temperature: 21.5, door_open: false, mode: 'eco' } },
  },
  array: {
    summary: 'A bare array of points (epoch seconds or milliseconds allowed)',
    value: [
      { timestamp: 1795860000, data: { temperature: 19 } },
      { timestamp: 1795860060000, data: { temperature: 18.25 } },
    ],
  },
}
