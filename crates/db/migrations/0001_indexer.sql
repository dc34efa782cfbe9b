-- The chain indexer's tables: its checkpoint, the recent block hashes it reorg-checks against,
-- the append-only log of canonical contract events, and the per-agreement state derived from them.
-- Amounts are uint256 on chain: NUMERIC(78, 0) holds any of them exactly.

-- One row per indexed chain: the last block whose events are all in `events`. Written in the same
-- transaction as the rows it covers, so a crash can neither lose nor repeat an event.
CREATE TABLE indexer_cursor (
    chain_id        BIGINT      PRIMARY KEY,
    escrow          BYTEA       NOT NULL CHECK (length(escrow) = 20),
    fee_collector   BYTEA       NOT NULL CHECK (length(fee_collector) = 20),
    start_block     BIGINT      NOT NULL CHECK (start_block >= 0),
    -- start_block - 1 and the start block's parent hash until the first batch is indexed.
    block_number    BIGINT      NOT NULL,
    block_hash      BYTEA       NOT NULL CHECK (length(block_hash) = 32),
    -- The highest block the node reported final (its `finalized` tag, or head - confirmations).
    finalized_block BIGINT      NOT NULL DEFAULT 0,
    -- The node's head when the cursor last moved.
    node_head       BIGINT      NOT NULL DEFAULT 0,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Hashes of recently indexed blocks, for detecting a reorg by parent hash and finding the fork
-- point. Only the reorg window is kept.
CREATE TABLE indexed_blocks (
    chain_id    BIGINT NOT NULL,
    number      BIGINT NOT NULL,
    hash        BYTEA  NOT NULL CHECK (length(hash) = 32),
    parent_hash BYTEA  NOT NULL CHECK (length(parent_hash) = 32),
    PRIMARY KEY (chain_id, number)
);

-- Every log of the escrow and the fee collector on the canonical chain, raw (topics concatenated,
-- ABI data) so that derived state can always be recomputed from it. Rows above a fork point are
-- deleted when the chain reorganises; otherwise the table is append-only.
CREATE TABLE chain_events (
    chain_id     BIGINT  NOT NULL,
    block_number BIGINT  NOT NULL,
    block_hash   BYTEA   NOT NULL CHECK (length(block_hash) = 32),
    log_index    INTEGER NOT NULL,
    tx_hash      BYTEA   NOT NULL CHECK (length(tx_hash) = 32),
    contract     BYTEA   NOT NULL CHECK (length(contract) = 20),
    kind         TEXT    NOT NULL,
    agreement_id BYTEA   CHECK (length(agreement_id) = 32),
    topics       BYTEA   NOT NULL,
    data         BYTEA   NOT NULL,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX chain_events_by_block ON chain_events (chain_id, block_number, log_index);
CREATE INDEX chain_events_by_agreement ON chain_events (chain_id, agreement_id, block_number, log_index)
    WHERE agreement_id IS NOT NULL;

-- Per-agreement state: a pure function of the agreement's canonical events (see the indexer's
-- `derive` module), kept up to date incrementally and recomputed on a reorg.
CREATE TABLE agreements (
    chain_id          BIGINT        NOT NULL,
    agreement_id      BYTEA         NOT NULL CHECK (length(agreement_id) = 32),
    buyer             BYTEA         NOT NULL,
    seller            BYTEA         NOT NULL,
    token             BYTEA         NOT NULL,
    max_amount        NUMERIC(78,0) NOT NULL,
    infra_fee         NUMERIC(78,0) NOT NULL,
    expiry            BIGINT        NOT NULL,
    close_window      BIGINT        NOT NULL,
    salt              BYTEA         NOT NULL,
    status            TEXT          NOT NULL
        CHECK (status IN ('active', 'closing', 'seller_claimed', 'settled')),
    deposited         NUMERIC(78,0) NOT NULL,
    fee_collected     NUMERIC(78,0) NOT NULL,
    -- The seller's recorded entitlement (its claimed voucher amount).
    settled_amount    NUMERIC(78,0) NOT NULL,
    -- Paid out to the seller side and to the buyer side.
    seller_paid_amount NUMERIC(78,0) NOT NULL,
    buyer_paid_amount  NUMERIC(78,0) NOT NULL,
    seller_paid       BOOLEAN       NOT NULL,
    buyer_withdrawn   BOOLEAN       NOT NULL,
    close_deadline    BIGINT,
    close_initiator   BYTEA,
    deferral_reason   TEXT,
    activated_block   BIGINT        NOT NULL,
    activated_tx      BYTEA         NOT NULL,
    closed_block      BIGINT,
    closed_tx         BYTEA,
    claimed_block     BIGINT,
    claimed_tx        BYTEA,
    seller_paid_block BIGINT,
    seller_paid_tx    BYTEA,
    withdrawn_block   BIGINT,
    withdrawn_tx      BYTEA,
    settled_block     BIGINT,
    settled_tx        BYTEA,
    last_block        BIGINT        NOT NULL,
    PRIMARY KEY (chain_id, agreement_id)
);
CREATE INDEX agreements_by_buyer ON agreements (chain_id, buyer);
CREATE INDEX agreements_by_seller ON agreements (chain_id, seller);
