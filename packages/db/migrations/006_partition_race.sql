-- Creating a day's partition from several sessions at once: the advisory lock lets one create it
-- at a time, but the next one's catalog snapshot may not show it yet, so its CREATE fails with
-- duplicate_table. That failure means "it exists now", which is what the caller wants.
CREATE OR REPLACE FUNCTION telemetry_ensure_partition(day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  partition text := format('telemetry_p%s', to_char(day, 'YYYYMMDD'));
BEGIN
  IF to_regclass(partition) IS NOT NULL THEN
    RETURN;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext(partition));
  BEGIN
    EXECUTE format(
      'CREATE TABLE IF NOT EXISTS %I PARTITION OF telemetry FOR VALUES FROM (%L) TO (%L)',
      partition,
      (day::timestamp AT TIME ZONE 'UTC'),
      ((day + 1)::timestamp AT TIME ZONE 'UTC')
    );
  EXCEPTION WHEN duplicate_table THEN
    NULL;
  END;
END
$$;
