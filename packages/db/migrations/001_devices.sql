-- The device registry. API keys are stored only as a SHA-256 hash (keys are 32 random bytes, so a
-- fast hash is enough); the prefix lets an operator recognise a key without revealing it.
CREATE TABLE devices (
  id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name             text NOT NULL UNIQUE,
  device_type      text NOT NULL DEFAULT 'sensor',
  description      text,
  location         text,
  firmware_version text,
  hardware_version text,
  metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
  status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  api_key_hash     bytea NOT NULL UNIQUE,
  api_key_prefix   text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  last_seen        timestamptz
);

CREATE INDEX devices_status_type_idx ON devices (status, device_type);
