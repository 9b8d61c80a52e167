-- The type each telemetry field was first stored with (number, boolean or string). InfluxDB fixes a
-- field's type on first write and refuses any other afterwards, so the gateway refuses a point that
-- changes a field's type with a 400 before it is queued, instead of the write failing later. Shared
-- by every gateway and bridge instance; rows are never updated.
CREATE TABLE field_types (
  name       text PRIMARY KEY,
  type       text NOT NULL CHECK (type IN ('number', 'boolean', 'string')),
  first_seen timestamptz NOT NULL DEFAULT now()
);

-- A point's optional `metadata` object, kept beside its fields (PostgreSQL only).
ALTER TABLE telemetry ADD COLUMN metadata jsonb;
