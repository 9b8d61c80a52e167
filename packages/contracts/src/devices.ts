import { type Static, Type } from '@sinclair/typebox'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(
  schema: T,
  options?: { description: string },
) => Type.Union([schema, Type.Null()], options)

/** A device's own token bucket, in points (docs/telemetry-contract.md, "Rate limits"). */
export const RateLimit = Type.Object(
  {
    points_per_second: Type.Number({
      minimum: 0.001,
      maximum: 1_000_000_000,
      description: 'points the bucket regains per second (fractions allowed: 0.1 is one point each 10 s)',
    }),
    burst_points: Type.Integer({
      minimum: 1,
      maximum: 1_000_000_000,
      description: 'points the bucket holds at most: what a device may send at once after being quiet',
    }),
  },
  { additionalProperties: false, title: 'RateLimit' },
)
export type RateLimit = Static<typeof RateLimit>

export const DeviceCreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, examples: ['greenhouse-sensor-01'] }),
    device_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64, examples: ['sensor'] })),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    location: Type.Optional(Type.String({ maxLength: 256 })),
    firmware_version: Type.Optional(Type.String({ maxLength: 64 })),
    hardware_version: Type.Optional(Type.String({ maxLength: 64 })),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false, title: 'DeviceCreate' },
)
export type DeviceCreateBody = Static<typeof DeviceCreateBody>

export const DeviceStatus = Type.Union([Type.Literal('active'), Type.Literal('inactive')])

export const Device = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    device_type: Type.String(),
    description: Nullable(Type.String()),
    location: Nullable(Type.String()),
    firmware_version: Nullable(Type.String()),
    hardware_version: Nullable(Type.String()),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    status: DeviceStatus,
    api_key_prefix: Type.String({ description: 'the first characters of the key, to recognise it' }),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
    last_seen: Nullable(Type.String({ format: 'date-time' })),
    rate_limit: Nullable(RateLimit, {
      description:
        "the device's own rate limit; null: DEVICE_RATE_POINTS_PER_SECOND and DEVICE_RATE_BURST_POINTS",
    }),
  },
  { title: 'Device' },
)
export type Device = Static<typeof Device>

export const DeviceCreated = Type.Object(
  {
    device: Device,
    api_key: Type.String({ description: 'shown once; only its hash is stored' }),
  },
  { title: 'DeviceCreated' },
)

/** POST /api/v1/devices/register: the key also inside `device`, where the predecessor's clients read it. */
export const DeviceRegistered = Type.Object(
  {
    device: Type.Intersect([Device, Type.Object({ api_key: Type.String({ description: 'the same key' }) })]),
    api_key: Type.String({ description: 'shown once; only its hash is stored' }),
  },
  { title: 'DeviceRegistered' },
)

export const DeviceUpdateBody = Type.Partial(
  Type.Object({
    name: Type.String({ minLength: 1, maxLength: 128 }),
    device_type: Type.String({ minLength: 1, maxLength: 64 }),
    description: Nullable(Type.String({ maxLength: 1024 })),
    location: Nullable(Type.String({ maxLength: 256 })),
    firmware_version: Nullable(Type.String({ maxLength: 64 })),
    hardware_version: Nullable(Type.String({ maxLength: 64 })),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    status: DeviceStatus,
    rate_limit: Nullable(RateLimit, { description: 'null: back to the defaults' }),
  }),
  { additionalProperties: false, minProperties: 1, title: 'DeviceUpdate' },
)
export type DeviceUpdateBody = Static<typeof DeviceUpdateBody>

export const DeviceListQuery = Type.Object(
  {
    page: Type.Integer({ minimum: 1, default: 1 }),
    per_page: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
    status: Type.Optional(DeviceStatus),
    device_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    search: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, description: 'in name, description, location' }),
    ),
  },
  { additionalProperties: false },
)
export type DeviceListQuery = Static<typeof DeviceListQuery>

export const DeviceList = Type.Object(
  {
    devices: Type.Array(Device),
    pagination: Type.Object({
      page: Type.Integer(),
      per_page: Type.Integer(),
      total: Type.Integer(),
      pages: Type.Integer(),
    }),
  },
  { title: 'DeviceList' },
)

export const DeviceWithOnline = Type.Intersect([Device, Type.Object({ is_online: Type.Boolean() })], {
  title: 'DeviceStatus',
})

export const DeviceEnvelope = Type.Object({ device: Device }, { title: 'DeviceEnvelope' })
export const DeviceStatusEnvelope = Type.Object(
  { device: DeviceWithOnline },
  { title: 'DeviceStatusEnvelope' },
)

export const DeviceIdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) })
