-- Usage agreements through the API: the buyer's proposal, the seller's answer, the activation
-- handed to the relayer, the usage recorded with the buyer's vouchers, and the history of every
-- transition. From activation on, the escrow's state is the indexer's (`agreements`); this
-- record follows it and never contradicts it.

CREATE TABLE usage_agreements (
    id                   TEXT          PRIMARY KEY CHECK (id ~ '^agr_[a-z2-7]{20}$'),
    -- Creation order, for keyset pagination (newest first) without OFFSET.
    seq                  BIGSERIAL     NOT NULL UNIQUE,
    chain_id             BIGINT        NOT NULL,
    buyer_agent_id       TEXT          NOT NULL REFERENCES agents (id),
    seller_agent_id      TEXT          NOT NULL REFERENCES agents (id),
    buyer_wallet         BYTEA         NOT NULL CHECK (length(buyer_wallet) = 20),
    -- The seller agent's wallet when proposed, fixed again when it accepts.
    seller_wallet        BYTEA         NOT NULL CHECK (length(seller_wallet) = 20),
    service_id           TEXT          NOT NULL,
    quantity             BIGINT        NOT NULL CHECK (quantity > 0),
    unit                 TEXT          NOT NULL,
    price_per_unit_cents BIGINT        NOT NULL CHECK (price_per_unit_cents > 0),
    rail                 TEXT          NOT NULL,
    provider             TEXT          NOT NULL,
    settlement_model     TEXT          NOT NULL,
    activation_version   TEXT          NOT NULL,
    -- The escrow's terms, in token base units and unix seconds.
    token                BYTEA         NOT NULL CHECK (length(token) = 20),
    max_amount           NUMERIC(78,0) NOT NULL CHECK (max_amount > 0),
    infra_fee            NUMERIC(78,0) NOT NULL CHECK (infra_fee >= 0),
    expiry               BIGINT        NOT NULL,
    close_window         INTEGER       NOT NULL CHECK (close_window > 0),
    metadata             JSONB         NOT NULL DEFAULT '{}',
    status               TEXT          NOT NULL CHECK (status IN ('proposed', 'accepted', 'rejected',
                             'expired', 'activating', 'active', 'closing', 'seller_claimed', 'settled')),
    -- Fixed by the seller's acceptance: the escrow's agreement id (its salt derives from `id`).
    onchain_id           BYTEA         CHECK (length(onchain_id) = 32),
    rejection_reason     TEXT,
    -- The latest activation handed to the relayer (its job holds the progress).
    activation_relay_id  TEXT,
    -- The highest usage recorded, with the buyer's voucher for the amount it comes to.
    usage_quantity       BIGINT        NOT NULL DEFAULT 0 CHECK (usage_quantity >= 0 AND usage_quantity <= quantity),
    voucher_amount       NUMERIC(78,0) NOT NULL DEFAULT 0,
    voucher_signature    BYTEA,
    created_at           TIMESTAMPTZ   NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ   NOT NULL DEFAULT now(),
    -- Accepted or later: the on-chain id is fixed. Rejected: a reason.
    CHECK (status IN ('proposed', 'rejected', 'expired') OR onchain_id IS NOT NULL),
    CHECK ((status = 'rejected') = (rejection_reason IS NOT NULL))
);
CREATE UNIQUE INDEX usage_agreements_onchain ON usage_agreements (chain_id, onchain_id)
    WHERE onchain_id IS NOT NULL;
-- An agent's agreements, newest first, in either role, with or without a status filter.
CREATE INDEX usage_agreements_by_buyer ON usage_agreements (buyer_agent_id, seq DESC);
CREATE INDEX usage_agreements_by_seller ON usage_agreements (seller_agent_id, seq DESC);
CREATE INDEX usage_agreements_by_buyer_status ON usage_agreements (buyer_agent_id, status, seq DESC);
CREATE INDEX usage_agreements_by_seller_status ON usage_agreements (seller_agent_id, status, seq DESC);
-- Proposals and accepted agreements waiting for their expiry.
CREATE INDEX usage_agreements_expiring ON usage_agreements (expiry)
    WHERE status IN ('proposed', 'accepted');

-- Every transition and recorded fact of a usage agreement, in order, written in the same
-- transaction as the change it records. Append-only: a reorg adds a `reorged` event rather than
-- removing the one it corrects.
CREATE TABLE agreement_events (
    id            BIGSERIAL   PRIMARY KEY,
    agreement_id  TEXT        NOT NULL REFERENCES usage_agreements (id),
    kind          TEXT        NOT NULL,
    -- The agreement's status once the event happened.
    status        TEXT        NOT NULL,
    -- `agent:<id>`, `owner:<id>`, `chain` (the indexer) or `system` (the expiry sweep).
    actor         TEXT        NOT NULL,
    detail        JSONB       NOT NULL DEFAULT '{}',
    tx_hash       BYTEA       CHECK (length(tx_hash) = 32),
    block_number  BIGINT,
    at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX agreement_events_by_agreement ON agreement_events (agreement_id, id);
