-- Approvals: a proposal whose buyer's owner's policy asks for a human decision waits in
-- `pending_approval` with an approval request until the owner approves it (it goes on to the
-- seller as `proposed`), rejects it (it ends `rejected` with the reason) or its expiry passes.

ALTER TABLE usage_agreements DROP CONSTRAINT usage_agreements_status_check;
ALTER TABLE usage_agreements ADD CONSTRAINT usage_agreements_status_check
    CHECK (status IN ('pending_approval', 'proposed', 'accepted', 'rejected', 'expired',
                      'activating', 'active', 'closing', 'seller_claimed', 'settled'));
-- Accepted or later: the on-chain id is fixed.
ALTER TABLE usage_agreements DROP CONSTRAINT usage_agreements_check1;
ALTER TABLE usage_agreements ADD CONSTRAINT usage_agreements_onchain_fixed
    CHECK (status IN ('pending_approval', 'proposed', 'rejected', 'expired') OR onchain_id IS NOT NULL);

-- What the expiry sweep looks for.
DROP INDEX usage_agreements_expiring;
CREATE INDEX usage_agreements_expiring ON usage_agreements (expiry)
    WHERE status IN ('pending_approval', 'proposed', 'accepted');

-- A proposal waiting for approval counts as open for its buyer (it committed to it), not for its
-- seller (which has not even seen a decision to make yet), as a proposal does.
CREATE OR REPLACE FUNCTION count_open_agreements() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    buyer_was  BOOLEAN := TG_OP = 'UPDATE' AND usage_agreement_is_open(OLD.status);
    buyer_now  BOOLEAN := usage_agreement_is_open(NEW.status);
    seller_was BOOLEAN := buyer_was AND OLD.status NOT IN ('proposed', 'pending_approval');
    seller_now BOOLEAN := buyer_now AND NEW.status NOT IN ('proposed', 'pending_approval');
    v_agent    TEXT;
    v_step     BIGINT;
BEGIN
    -- The two agents' rows in id order, so that two transactions cannot lock them crosswise.
    FOR v_agent, v_step IN
        SELECT a, st FROM (VALUES
            (NEW.buyer_agent_id, buyer_now::int - buyer_was::int),
            (NEW.seller_agent_id, seller_now::int - seller_was::int)) AS d (a, st)
         WHERE st <> 0 ORDER BY a
    LOOP
        INSERT INTO agent_open_agreements (agent_id, open) VALUES (v_agent, greatest(v_step, 0))
        ON CONFLICT (agent_id) DO UPDATE SET open = agent_open_agreements.open + v_step;
    END LOOP;
    RETURN NULL;
END $$;

-- One request per agreement (only the proposal asks for approval). Decided under the
-- agreement's row lock, so a decision and the agreement's transition are one.
CREATE TABLE approval_requests (
    id              TEXT        PRIMARY KEY CHECK (id ~ '^apr_[a-z2-7]{20}$'),
    -- Creation order, for keyset pagination (newest first).
    seq             BIGSERIAL   NOT NULL UNIQUE,
    -- The agent whose owner decides (the buyer).
    agent_id        TEXT        NOT NULL REFERENCES agents (id),
    agreement_id    TEXT        NOT NULL UNIQUE REFERENCES usage_agreements (id),
    -- The policy rule that asked, its figure and the amount it was asked about, in cents.
    rule            TEXT        NOT NULL,
    threshold_cents BIGINT      NOT NULL CHECK (threshold_cents > 0),
    amount_cents    BIGINT      NOT NULL CHECK (amount_cents > 0),
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    -- Unix seconds: no decision from then on (the agreement's terms expire then too).
    expires_at      BIGINT      NOT NULL,
    reason          TEXT,
    -- `owner:<id>` of the decision.
    decided_by      TEXT,
    decided_at      TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status IN ('approved', 'rejected')) = (decided_at IS NOT NULL AND decided_by IS NOT NULL)),
    CHECK ((status = 'rejected') = (reason IS NOT NULL))
);
-- An agent's requests, newest first, with or without a status filter.
CREATE INDEX approval_requests_by_agent ON approval_requests (agent_id, seq DESC);
CREATE INDEX approval_requests_by_agent_status ON approval_requests (agent_id, status, seq DESC);
