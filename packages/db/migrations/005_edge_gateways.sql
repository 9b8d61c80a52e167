-- Edge gateways: a site gateway sends one batch for many devices behind it. Its key (hashed, like a
-- device key) may speak only for the devices listed for it.
CREATE TABLE edge_gateways (
  id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name           text NOT NULL UNIQUE,
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  api_key_hash   bytea NOT NULL UNIQUE,
  api_key_prefix text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE edge_gateway_devices (
  gateway_id integer NOT NULL REFERENCES edge_gateways (id) ON DELETE CASCADE,
  device_id  integer NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  PRIMARY KEY (gateway_id, device_id)
);
