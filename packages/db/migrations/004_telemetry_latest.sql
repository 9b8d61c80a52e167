-- The newest value of every field of every device, kept by the Postgres writer in the same
-- transaction as the points, so "latest values" is one index lookup instead of a scan of history.
CREATE TABLE telemetry_latest (
  device_id integer     NOT NULL,
  field     text        NOT NULL,
  time      timestamptz NOT NULL,
  value     jsonb       NOT NULL,
  PRIMARY KEY (device_id, field)
);
