-- A sponsored action that passed simulation and then reverted on chain while the agreement still
-- allowed it is a strike. It lands on whoever caused it (the signer's wallet refusing its own
-- authorization, or the buyer's wallet refusing the voucher of a seller's claim), and reaches
-- either all of that party's agreements (`party`) or, when the cause cannot be pinned on the
-- party, only this agreement (`agreement`), so that a counterparty cannot shut a party out of
-- its other agreements.
ALTER TABLE relay_jobs
    ADD COLUMN strike_party BYTEA CHECK (length(strike_party) = 20),
    ADD COLUMN strike_scope TEXT CHECK (strike_scope IN ('party', 'agreement')),
    ADD CONSTRAINT relay_jobs_strike CHECK ((strike_party IS NULL) = (strike_scope IS NULL));

CREATE INDEX relay_jobs_strikes ON relay_jobs (chain_id, strike_party, created_at)
    WHERE strike_party IS NOT NULL;
