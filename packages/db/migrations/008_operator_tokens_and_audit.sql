-- Operator tokens besides ADMIN_TOKEN: each with a role, stored as the SHA-256 of its secret
-- (shown once), revoked by setting revoked_at (kept, so the audit log still names it).
CREATE TABLE operator_tokens (
  id bigserial PRIMARY KEY,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  role text NOT NULL CHECK (role IN ('read', 'admin')),
  secret_hash bytea NOT NULL UNIQUE,
  secret_prefix text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
-- A name is unique among the tokens in use; a revoked token's name may be given again.
CREATE UNIQUE INDEX operator_tokens_name_in_use ON operator_tokens (name) WHERE revoked_at IS NULL;

-- Every change made with an operator credential (ADMIN_TOKEN or an operator token), refused or not.
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  token_id bigint REFERENCES operator_tokens (id),
  token_name text NOT NULL,
  role text NOT NULL,
  method text NOT NULL,
  route text NOT NULL,
  params jsonb NOT NULL DEFAULT '{}',
  status_code integer NOT NULL,
  ip text NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
