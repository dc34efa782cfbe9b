-- Each claim of an idempotency key carries a random token: only the request holding the claim
-- may renew its lease, store its response or release it.
ALTER TABLE idempotency_keys ADD COLUMN claim_token TEXT NOT NULL DEFAULT '';
