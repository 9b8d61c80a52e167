-- Webhooks per alert rule (docs/alerts.md): each transition to firing or resolved is posted to the
-- rule's webhook_url, signed with HMAC-SHA256 under webhook_secret. The secret is kept as given
-- (an HMAC needs the key itself) and never returned by the API after it was shown once.
ALTER TABLE alert_rules
  ADD COLUMN webhook_url text,
  ADD COLUMN webhook_secret text,
  ADD CONSTRAINT alert_rules_webhook_secret CHECK (webhook_url IS NULL OR webhook_secret IS NOT NULL);
