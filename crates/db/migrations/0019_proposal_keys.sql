-- A proposal remembers the Idempotency-Key it was made under, with its principal. The idempotency
-- record is written after the proposal's own transaction commits; if the process dies between
-- the two, a retry under the same key finds this agreement instead of proposing a second one.
ALTER TABLE usage_agreements ADD COLUMN proposal_key TEXT;
CREATE UNIQUE INDEX usage_agreements_by_proposal_key ON usage_agreements (proposal_key)
    WHERE proposal_key IS NOT NULL;
