-- Webhooks: owners' endpoints per agent, the messages announcing what happened, and their
-- deliveries with every attempt. A message is written by a trigger in the same transaction as
-- the change it announces (an agreement history event, a sponsored action's outcome), so
-- nothing is announced that did not commit and nothing that committed goes unannounced. The
-- delivery workers (pactum-webhooks) take due deliveries with FOR UPDATE SKIP LOCKED, a few per
-- endpoint at a time, and poll for them (no NOTIFY: it would serialise the commits of every
-- transaction that announces something).

CREATE TABLE webhook_endpoints (
    id              TEXT        PRIMARY KEY CHECK (id ~ '^whk_[a-z2-7]{20}$'),
    seq             BIGSERIAL   NOT NULL UNIQUE,
    agent_id        TEXT        NOT NULL REFERENCES agents (id),
    url             TEXT        NOT NULL,
    description     TEXT        NOT NULL DEFAULT '',
    -- The event types delivered; NULL: every type.
    event_types     TEXT[],
    status          TEXT        NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    disabled_reason TEXT,
    disabled_at     TIMESTAMPTZ,
    -- `whsec_<base64>`. The signing key must be at hand to sign, so it is stored as is: whoever
    -- reads this table can sign as pactum to these endpoints (see docs/webhooks.md).
    secret          TEXT        NOT NULL CHECK (secret LIKE 'whsec\_%'),
    -- A rotated secret keeps signing beside its successor until it expires.
    previous_secret TEXT        CHECK (previous_secret LIKE 'whsec\_%'),
    previous_expires_at TIMESTAMPTZ,
    -- Since when every attempt to it failed, with no day between two failures (NULL: the last
    -- attempt succeeded, or none failed); and its last failure.
    failing_since   TIMESTAMPTZ,
    last_failed_at  TIMESTAMPTZ,
    -- Deleted by its owner: kept (deleting rows would lock it against the transactions that
    -- announce events), but no longer listed, counted or delivered to.
    deleted_at      TIMESTAMPTZ,
    created_by      TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'disabled') = (disabled_at IS NOT NULL AND disabled_reason IS NOT NULL)),
    CHECK ((previous_secret IS NULL) = (previous_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_by_agent ON webhook_endpoints (agent_id, seq) WHERE deleted_at IS NULL;

-- One message per event and agent with an endpoint subscribed to it. `id` is the
-- `webhook-id` of every delivery and attempt of it; `payload` the exact body, signed as is.
CREATE TABLE webhook_messages (
    id          TEXT        PRIMARY KEY CHECK (id ~ '^msg_[0-9a-f]{32}$'),
    agent_id    TEXT        NOT NULL REFERENCES agents (id),
    event_type  TEXT        NOT NULL,
    payload     TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id              TEXT        PRIMARY KEY CHECK (id ~ '^dlv_[0-9a-f]{32}$'),
    seq             BIGSERIAL   NOT NULL UNIQUE,
    message_id      TEXT        NOT NULL REFERENCES webhook_messages (id),
    endpoint_id     TEXT        NOT NULL REFERENCES webhook_endpoints (id),
    agent_id        TEXT        NOT NULL REFERENCES agents (id),
    status          TEXT        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- Attempts made, in all; and of the current schedule (what the next pause depends on).
    attempts        INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    schedule_step   INTEGER     NOT NULL DEFAULT 0 CHECK (schedule_step >= 0),
    -- Pending: when it is due. A worker that takes it moves this to the end of its lease, so
    -- that a worker killed mid-attempt leaves it to be taken again then.
    next_attempt_at TIMESTAMPTZ,
    -- Moved on by every claim, replay and failing: an attempt's outcome is recorded only if the
    -- delivery is still in the claim it was made under (a late outcome changes nothing).
    claim           BIGINT      NOT NULL DEFAULT 0,
    last_status_code INTEGER,
    last_error      TEXT,
    delivered_at    TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_agent ON webhook_deliveries (agent_id, seq DESC);
CREATE INDEX webhook_deliveries_by_agent_status ON webhook_deliveries (agent_id, status, seq DESC);
CREATE INDEX webhook_deliveries_due_by_endpoint ON webhook_deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    id           BIGSERIAL   PRIMARY KEY,
    delivery_id  TEXT        NOT NULL REFERENCES webhook_deliveries (id),
    started_at   TIMESTAMPTZ NOT NULL,
    duration_ms  INTEGER     NOT NULL CHECK (duration_ms >= 0),
    -- The answer's status, if one came; otherwise why not (timeout, refused, forbidden address).
    status_code  INTEGER,
    error        TEXT,
    -- The start of the answer's body (at most 4 KiB).
    response     TEXT,
    CHECK (status_code IS NOT NULL OR error IS NOT NULL)
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);

-- Writes a message of `p_type` with body `p_payload` for each of `p_agents` that has an endpoint
-- subscribed to the type, and a delivery to each such endpoint: due now if the endpoint is
-- enabled, failed (replayable once it is enabled again) if it is disabled. Deleted endpoints get
-- nothing.
CREATE FUNCTION webhook_enqueue(p_agents TEXT[], p_type TEXT, p_payload TEXT) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    v_agent TEXT;
    v_message TEXT;
BEGIN
    FOR v_agent IN SELECT DISTINCT a FROM unnest(p_agents) AS a WHERE a IS NOT NULL ORDER BY a LOOP
        IF EXISTS (SELECT 1 FROM webhook_endpoints e
                    WHERE e.agent_id = v_agent AND e.deleted_at IS NULL
                      AND (e.event_types IS NULL OR p_type = ANY (e.event_types))) THEN
            v_message := 'msg_' || replace(gen_random_uuid()::text, '-', '');
            INSERT INTO webhook_messages (id, agent_id, event_type, payload)
            VALUES (v_message, v_agent, p_type, p_payload);
            INSERT INTO webhook_deliveries
                   (id, message_id, endpoint_id, agent_id, status, next_attempt_at, last_error)
            SELECT 'dlv_' || replace(gen_random_uuid()::text, '-', ''), v_message, e.id, v_agent,
                   CASE WHEN e.status = 'enabled' THEN 'pending' ELSE 'failed' END,
                   CASE WHEN e.status = 'enabled' THEN now() END,
                   CASE WHEN e.status = 'enabled' THEN NULL
                        ELSE 'the endpoint was disabled when this event happened' END
              FROM webhook_endpoints e
             WHERE e.agent_id = v_agent AND e.deleted_at IS NULL
               AND (e.event_types IS NULL OR p_type = ANY (e.event_types));
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION hex0x(b BYTEA) RETURNS TEXT LANGUAGE sql IMMUTABLE AS
    $$ SELECT CASE WHEN b IS NULL THEN NULL ELSE '0x' || encode(b, 'hex') END $$;

-- Every agreement history event, to both parties' agents: `agreement.<kind>`.
CREATE FUNCTION webhook_agreement_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    u usage_agreements%ROWTYPE;
    v_type TEXT := 'agreement.' || NEW.kind;
BEGIN
    SELECT * INTO u FROM usage_agreements WHERE id = NEW.agreement_id;
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

CREATE TRIGGER agreement_events_webhooks AFTER INSERT ON agreement_events
    FOR EACH ROW EXECUTE FUNCTION webhook_agreement_event();

-- Every sponsored action's outcome (mined, or given up), to the agents of the escrow's parties;
-- and an activation's failure into its agreement's history (which announces it in turn).
CREATE FUNCTION webhook_relay_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    u usage_agreements%ROWTYPE;
    v_type TEXT := 'sponsored_action.' || NEW.state;
    v_agents TEXT[];
BEGIN
    SELECT * INTO u FROM usage_agreements
     WHERE chain_id = NEW.chain_id AND onchain_id = NEW.agreement_id;
    IF FOUND THEN
        v_agents := ARRAY[u.buyer_agent_id, u.seller_agent_id];
    ELSE
        SELECT array_agg(id ORDER BY id) INTO v_agents FROM agents
         WHERE wallet_proof IS NOT NULL AND wallet_address IN (NEW.buyer, NEW.seller);
    END IF;
    PERFORM webhook_enqueue(
        v_agents,
        v_type,
        jsonb_build_object(
            'type', v_type,
            'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'data', jsonb_build_object(
                'relay_id', NEW.id,
                'action', NEW.action,
                'state', NEW.state,
                'chain_id', NEW.chain_id,
                'onchain_agreement_id', hex0x(NEW.agreement_id),
                'agreement_id', u.id,
                'signer', hex0x(NEW.signer),
                'requested_by', NEW.requested_by,
                'tx_hash', hex0x(NEW.tx_hash),
                'block_number', NEW.block_number,
                'gas_used', NEW.gas_used,
                'failure_code', NEW.failure_code,
                'failure_detail', NEW.failure_detail))::text);
    IF NEW.state = 'failed' AND NEW.action = 'activate' AND u.id IS NOT NULL
       AND u.activation_relay_id = NEW.id THEN
        INSERT INTO agreement_events (agreement_id, kind, status, actor, detail)
        VALUES (u.id, 'activation_failed', u.status, 'relayer',
                jsonb_build_object('relay_id', NEW.id, 'failure_code', NEW.failure_code,
                                   'failure_detail', NEW.failure_detail));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER relay_jobs_webhooks AFTER UPDATE OF state ON relay_jobs
    FOR EACH ROW WHEN (NEW.state IN ('confirmed', 'failed') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION webhook_relay_outcome();
