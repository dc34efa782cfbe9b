-- How many agreements each agent has open (as buyer or seller: not rejected, expired or
-- settled), kept by a trigger on every insert and status change of usage_agreements, so that a
-- policy's max_open_agreements is checked with one row read instead of a count over the agent's
-- history. The two agents' rows are touched in id order, so that two transactions on the same
-- pair cannot deadlock. The count is read before the write it governs, so concurrent proposals
-- may see it one or two behind: max_open_agreements is a guardrail, not a ledger (spending
-- limits are: see policy_spending).
CREATE TABLE agent_open_agreements (
    agent_id TEXT   PRIMARY KEY REFERENCES agents (id),
    open     BIGINT NOT NULL CHECK (open >= 0)
);

CREATE FUNCTION usage_agreement_is_open(status TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE AS $$ SELECT status NOT IN ('rejected', 'expired', 'settled') $$;

CREATE FUNCTION count_open_agreements() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_open BOOLEAN := TG_OP = 'UPDATE' AND usage_agreement_is_open(OLD.status);
    now_open BOOLEAN := usage_agreement_is_open(NEW.status);
    step     BIGINT;
BEGIN
    IF now_open = was_open THEN
        RETURN NULL;
    END IF;
    step := CASE WHEN now_open THEN 1 ELSE -1 END;
    INSERT INTO agent_open_agreements (agent_id, open)
    SELECT agent, greatest(step, 0)
      FROM unnest(ARRAY[least(NEW.buyer_agent_id, NEW.seller_agent_id),
                        greatest(NEW.buyer_agent_id, NEW.seller_agent_id)]) AS agent
    ON CONFLICT (agent_id) DO UPDATE SET open = agent_open_agreements.open + step;
    RETURN NULL;
END $$;

-- Deferred to commit: the counter rows (one agent's proposals all touch its row) are locked only
-- while the transaction commits, not through the rest of its work.
CREATE CONSTRAINT TRIGGER usage_agreements_count_open
    AFTER INSERT OR UPDATE OF status ON usage_agreements
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION count_open_agreements();

-- The agreements already there.
INSERT INTO agent_open_agreements (agent_id, open)
SELECT agent, count(*)
  FROM (SELECT buyer_agent_id AS agent FROM usage_agreements WHERE usage_agreement_is_open(status)
        UNION ALL
        SELECT seller_agent_id FROM usage_agreements WHERE usage_agreement_is_open(status)) o
 GROUP BY agent;
