-- The announcing triggers build a message only when someone will receive it: whether any
-- party's agent has an endpoint subscribed to the type is checked first (one index probe), so
-- a history event nobody subscribed to costs no payload (the common case on the hot paths:
-- record-usage, the indexer's batches).
CREATE FUNCTION webhook_wanted(p_agents TEXT[], p_type TEXT) RETURNS BOOLEAN
    LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM webhook_endpoints e
                    WHERE e.agent_id = ANY (p_agents) AND e.deleted_at IS NULL
                      AND (e.event_types IS NULL OR p_type = ANY (e.event_types)))
$$;

CREATE OR REPLACE FUNCTION webhook_agreement_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    u usage_agreements%ROWTYPE;
    v_type TEXT := 'agreement.' || NEW.kind;
BEGIN
    SELECT * INTO u FROM usage_agreements WHERE id = NEW.agreement_id;
    IF NOT webhook_wanted(ARRAY[u.buyer_agent_id, u.seller_agent_id], v_type) THEN
        RETURN NULL;
    END IF;
    PERFORM webhook_enqueue(
        ARRAY[u.buyer_agent_id, u.seller_agent_id],
        v_type,
        jsonb_build_object(
            'type', v_type,
            'timestamp', to_char(NEW.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'data', jsonb_build_object(
                'event_id', NEW.id,
                'agreement_id', NEW.agreement_id,
                'onchain_agreement_id', hex0x(u.onchain_id),
                'chain_id', u.chain_id,
                'buyer_agent_id', u.buyer_agent_id,
                'seller_agent_id', u.seller_agent_id,
                'kind', NEW.kind,
                'status', NEW.status,
                'actor', NEW.actor,
                'detail', NEW.detail,
                'tx_hash', hex0x(NEW.tx_hash),
                'block_number', NEW.block_number))::text);
    RETURN NULL;
END $$;
