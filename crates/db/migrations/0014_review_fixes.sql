-- Review fixes.
--
-- 1. Open agreements count what an agent committed to: as buyer, its own proposals onwards; as
--    seller, only agreements it accepted. A proposal merely received does not count, or anyone
--    could fill an agent's max_open_agreements by proposing to it.
CREATE OR REPLACE FUNCTION count_open_agreements() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    buyer_was  BOOLEAN := TG_OP = 'UPDATE' AND usage_agreement_is_open(OLD.status);
    buyer_now  BOOLEAN := usage_agreement_is_open(NEW.status);
    seller_was BOOLEAN := buyer_was AND OLD.status <> 'proposed';
    seller_now BOOLEAN := buyer_now AND NEW.status <> 'proposed';
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

DELETE FROM agent_open_agreements;
INSERT INTO agent_open_agreements (agent_id, open)
SELECT agent, count(*)
  FROM (SELECT buyer_agent_id AS agent FROM usage_agreements WHERE usage_agreement_is_open(status)
        UNION ALL
        SELECT seller_agent_id FROM usage_agreements
         WHERE usage_agreement_is_open(status) AND status <> 'proposed') o
 GROUP BY agent;

-- 2. One wallet, one *proven* agent: an agent stored before proofs existed (it cannot sign in)
--    no longer keeps the wallet from the agent that proves it.
DROP INDEX agents_wallet;
CREATE UNIQUE INDEX agents_wallet ON agents (wallet_address) WHERE wallet_proof IS NOT NULL;
