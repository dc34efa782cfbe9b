-- Receipts: the service's signed statement of each money movement final on chain (deposit and
-- fee at activation, the seller's payout, the buyer's withdrawal). Issued from the indexed logs
-- (`chain_events`) once their block is final; kept for good, even if a reorg later removes the
-- log (verification then says so). One per log: the id is a hash of the log's place.
CREATE TABLE receipts (
    id                   TEXT          PRIMARY KEY CHECK (id ~ '^rcp_[0-9a-f]{32}$'),
    seq                  BIGSERIAL     NOT NULL UNIQUE,
    chain_id             BIGINT        NOT NULL,
    kind                 TEXT          NOT NULL
        CHECK (kind IN ('deposit', 'infra_fee', 'seller_payout', 'buyer_withdrawal')),
    onchain_agreement_id BYTEA         NOT NULL CHECK (length(onchain_agreement_id) = 32),
    -- The usage agreement's API id, when the escrow is one of the API's.
    agreement_id         TEXT,
    -- The parties' agents at issuance (who may list and verify it, with their owners).
    buyer_agent_id       TEXT          REFERENCES agents (id),
    seller_agent_id      TEXT          REFERENCES agents (id),
    payer                BYTEA         NOT NULL CHECK (length(payer) = 20),
    payee                BYTEA         NOT NULL CHECK (length(payee) = 20),
    token                BYTEA         NOT NULL CHECK (length(token) = 20),
    amount               NUMERIC(78,0) NOT NULL CHECK (amount > 0),
    emitter              BYTEA         NOT NULL CHECK (length(emitter) = 20),
    tx_hash              BYTEA         NOT NULL CHECK (length(tx_hash) = 32),
    log_index            INTEGER       NOT NULL,
    block_number         BIGINT        NOT NULL,
    block_hash           BYTEA         NOT NULL CHECK (length(block_hash) = 32),
    block_time           BIGINT        NOT NULL,
    -- The EIP-712 domain's verifying contract it was signed under (the deployment's escrow).
    verifying_contract   BYTEA         NOT NULL CHECK (length(verifying_contract) = 20),
    -- The EIP-712 signature of the receipt, and the address that made it.
    signer               BYTEA         NOT NULL CHECK (length(signer) = 20),
    signature            BYTEA         NOT NULL CHECK (length(signature) = 65),
    issued_at            TIMESTAMPTZ   NOT NULL DEFAULT now(),
    UNIQUE (chain_id, block_hash, log_index)
);
CREATE INDEX receipts_by_buyer_agent ON receipts (buyer_agent_id, seq DESC);
CREATE INDEX receipts_by_seller_agent ON receipts (seller_agent_id, seq DESC);
CREATE INDEX receipts_by_agreement ON receipts (chain_id, onchain_agreement_id);

-- Logs of the movement kinds the issuer looked at and will never issue a receipt for (nothing
-- moved, it does not decode, its agreement's token is unknown), with why: so that they neither
-- hold up the issuer nor go unnoticed.
CREATE TABLE receipt_skips (
    chain_id   BIGINT      NOT NULL,
    block_hash BYTEA       NOT NULL CHECK (length(block_hash) = 32),
    log_index  INTEGER     NOT NULL,
    reason     TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, block_hash, log_index)
);

-- The issuer's checkpoint: every final log at or below `block_number` has a receipt or a skip
-- (the issuer looks again a little below it, for logs a reorg made canonical).
CREATE TABLE receipt_checkpoints (
    chain_id     BIGINT PRIMARY KEY,
    block_number BIGINT NOT NULL
);

-- Every receipt issued is announced to the parties' agents (`receipt.issued`), in the
-- transaction that issues it.
CREATE FUNCTION webhook_receipt_issued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_enqueue(
        ARRAY[NEW.buyer_agent_id, NEW.seller_agent_id],
        'receipt.issued',
        jsonb_build_object(
            'type', 'receipt.issued',
            'timestamp', to_char(NEW.issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'data', jsonb_build_object(
                'receipt_id', NEW.id,
                'kind', NEW.kind,
                'chain_id', NEW.chain_id,
                'onchain_agreement_id', hex0x(NEW.onchain_agreement_id),
                'agreement_id', NEW.agreement_id,
                'payer', hex0x(NEW.payer),
                'payee', hex0x(NEW.payee),
                'token', hex0x(NEW.token),
                'amount', NEW.amount::text,
                'tx_hash', hex0x(NEW.tx_hash),
                'log_index', NEW.log_index,
                'block_number', NEW.block_number))::text);
    RETURN NULL;
END $$;

CREATE TRIGGER receipts_webhooks AFTER INSERT ON receipts
    FOR EACH ROW EXECUTE FUNCTION webhook_receipt_issued();
