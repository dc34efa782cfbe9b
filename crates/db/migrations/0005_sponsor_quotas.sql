-- Sponsorship is bounded per caller, not only per signing party: every job records the owner of
-- the API principal that posted it (`requested_by` already names the principal), and both are
-- indexed for the 24-hour counts of actions and gas that the per-principal and per-owner quotas
-- check at acceptance. Jobs accepted before this migration, and jobs accepted without an API
-- principal (the operator's own tools), have no owner.
ALTER TABLE relay_jobs ADD COLUMN owner_id TEXT;

CREATE INDEX relay_jobs_by_requester ON relay_jobs (chain_id, requested_by, created_at);
CREATE INDEX relay_jobs_by_owner ON relay_jobs (chain_id, owner_id, created_at)
    WHERE owner_id IS NOT NULL;
