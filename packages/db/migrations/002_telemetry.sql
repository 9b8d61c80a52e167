-- Every point, one row per (device, timestamp), partitioned by day so that retention drops whole
-- partitions and a time-range query touches only the days it asks for. The primary key is the
-- idempotency key of the writers and the index behind "one device, a time range".
CREATE TABLE telemetry (
  device_id   integer     NOT NULL,
  time        timestamptz NOT NULL,
  type        text,
  data        jsonb       NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(), -- when the gateway accepted it
  PRIMARY KEY (device_id, time)
) PARTITION BY RANGE (time);

-- Creates the UTC day partition holding `day` if it is missing. Writers call it before inserting;
-- the advisory lock keeps concurrent writers from racing on the same CREATE.
CREATE FUNCTION telemetry_ensure_partition(day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  partition text := format('telemetry_p%s', to_char(day, 'YYYYMMDD'));
BEGIN
  IF to_regclass(partition) IS NOT NULL THEN
    RETURN;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext(partition));
  IF to_regclass(partition) IS NULL THEN
    EXECUTE format(
      'CREATE TABLE %I PARTITION OF telemetry FOR VALUES FROM (%L) TO (%L)',
      partition,
      (day::timestamp AT TIME ZONE 'UTC'),
      ((day + 1)::timestamp AT TIME ZONE 'UTC')
    );
  END IF;
END
$$;
