-- A device's own token bucket (points per second, burst in points); NULL: the configured defaults.
ALTER TABLE devices ADD COLUMN rate_limit jsonb CHECK (
  rate_limit IS NULL OR (
    jsonb_typeof(rate_limit -> 'points_per_second') = 'number'
    AND jsonb_typeof(rate_limit -> 'burst_points') = 'number'
  )
);
