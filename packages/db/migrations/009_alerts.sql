-- Alerting (docs/alerts.md): rules managed through the API, one state per (rule, device), and the
-- history of every transition, which is also the outbox of the deliveries (delivery_queued).
CREATE TABLE alert_rules (
  id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name            text NOT NULL UNIQUE,
  kind            text NOT NULL DEFAULT 'threshold' CHECK (kind IN ('threshold', 'no_data')),
  field           text,
  condition       text CHECK (condition IN ('>', '>=', '<', '<=', '==', '!=')),
  threshold       double precision,
  clear_threshold double precision,
  for_seconds     integer NOT NULL DEFAULT 0 CHECK (for_seconds >= 0),
  no_data_seconds integer CHECK (no_data_seconds > 0),
  severity        text NOT NULL DEFAULT 'warning',
  labels          jsonb NOT NULL DEFAULT '{}'::jsonb,
  device_ids      integer[],
  device_type     text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CHECK (device_ids IS NULL OR device_type IS NULL)
);

-- last_point_at: the newest point evaluated for this (rule, device). A point not newer changes
-- nothing, which makes a redelivered batch harmless and late points inert.
CREATE TABLE alert_states (
  rule_id       integer NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
  device_id     integer NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  state         text NOT NULL DEFAULT 'inactive'
                CHECK (state IN ('inactive', 'pending', 'firing', 'resolved')),
  since         timestamptz,
  value         double precision,
  firing_since  timestamptz,
  last_point_at timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (rule_id, device_id)
);
CREATE INDEX alert_states_state_idx ON alert_states (state, device_id);

CREATE TABLE alert_transitions (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rule_id         integer NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
  device_id       integer NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  from_state      text NOT NULL,
  to_state        text NOT NULL,
  at              timestamptz NOT NULL,
  value           double precision,
  firing_since    timestamptz,
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  delivery_queued boolean NOT NULL DEFAULT false
);
CREATE INDEX alert_transitions_rule_device_idx ON alert_transitions (rule_id, device_id, id);
CREATE INDEX alert_transitions_device_idx ON alert_transitions (device_id, id);
CREATE INDEX alert_transitions_undelivered_idx ON alert_transitions (id) WHERE NOT delivery_queued;
