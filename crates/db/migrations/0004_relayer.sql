-- The sponsored-action relayer's durable state. PostgreSQL is the source of truth: a job's nonce,
-- its signed transaction and the attempt record are written in one transaction before the bytes
-- are broadcast, so that after a crash at any point the relayer resumes from here.

-- The relayer's own accounts (gas-paying keys). `next_nonce` is the next nonce the relayer will
-- give out for the key; it only moves forward, inside the transaction that stores the attempt
-- using it. One process at a time writes for a key (a session advisory lock, see the relayer).
CREATE TABLE relay_signers (
    chain_id     BIGINT        NOT NULL,
    address      BYTEA         NOT NULL CHECK (length(address) = 20),
    next_nonce   BIGINT        NOT NULL CHECK (next_nonce >= 0),
    -- The last balance observed (wei) and when; acceptance pauses below the configured minimum.
    balance      NUMERIC(78,0),
    balance_at   TIMESTAMPTZ,
    PRIMARY KEY (chain_id, address)
);

-- One row per accepted authorization. The same authorization (same signed message digest) is
-- always the same job, and an agreement has at most one job in flight.
CREATE TABLE relay_jobs (
    id             TEXT          PRIMARY KEY CHECK (id ~ '^rel_[a-z0-9]{20}$'),
    chain_id       BIGINT        NOT NULL,
    agreement_id   BYTEA         NOT NULL CHECK (length(agreement_id) = 32),
    action         TEXT          NOT NULL
        CHECK (action IN ('activate', 'initiate_close', 'seller_claim', 'buyer_withdraw')),
    -- The EIP-712 digest the party signed (for an activation: the agreement id).
    auth_digest    BYTEA         NOT NULL CHECK (length(auth_digest) = 32),
    -- The party whose signature this is, and the agreement's parties (for visibility).
    signer         BYTEA         NOT NULL CHECK (length(signer) = 20),
    buyer          BYTEA         NOT NULL CHECK (length(buyer) = 20),
    seller         BYTEA         NOT NULL CHECK (length(seller) = 20),
    target         BYTEA         NOT NULL CHECK (length(target) = 20),
    calldata       BYTEA         NOT NULL,
    -- The authorization's deadline (unix seconds).
    deadline       BIGINT        NOT NULL,
    -- The gas reserved for it at acceptance (estimate plus margin, under the ceiling).
    gas_limit      BIGINT        NOT NULL CHECK (gas_limit > 0),
    -- accepted -> submitting (nonce reserved, signed tx stored) -> submitted (broadcast)
    --   -> confirmed | failed; cancelling: a no-op replaces it at its nonce (it is failing).
    state          TEXT          NOT NULL
        CHECK (state IN ('accepted', 'submitting', 'submitted', 'cancelling', 'confirmed', 'failed')),
    failure_code   TEXT,
    failure_detail TEXT,
    -- The key submitting it and the nonce it holds (set together when the nonce is reserved).
    relayer        BYTEA         CHECK (length(relayer) = 20),
    nonce          BIGINT,
    -- The transaction that was mined, with its cost.
    tx_hash        BYTEA         CHECK (length(tx_hash) = 32),
    block_number   BIGINT,
    gas_used       BIGINT,
    gas_price      NUMERIC(78,0),
    requested_by   TEXT          NOT NULL,
    created_at     TIMESTAMPTZ   NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ   NOT NULL DEFAULT now(),
    submitted_at   TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    CHECK ((relayer IS NULL) = (nonce IS NULL))
);
-- The same authorization is the same job, unless that job was refused before it got a nonce (a
-- transient refusal at submission): then it may be accepted again.
CREATE UNIQUE INDEX relay_jobs_authorization ON relay_jobs (chain_id, auth_digest)
    WHERE NOT (state = 'failed' AND nonce IS NULL);
CREATE UNIQUE INDEX relay_jobs_one_in_flight ON relay_jobs (chain_id, agreement_id)
    WHERE state IN ('accepted', 'submitting', 'submitted');
CREATE UNIQUE INDEX relay_jobs_nonce ON relay_jobs (chain_id, relayer, nonce)
    WHERE nonce IS NOT NULL AND state IN ('submitting', 'submitted', 'cancelling');
CREATE INDEX relay_jobs_queue ON relay_jobs (chain_id, created_at) WHERE state = 'accepted';
CREATE INDEX relay_jobs_by_agreement ON relay_jobs (chain_id, agreement_id, created_at);
CREATE INDEX relay_jobs_by_day ON relay_jobs (chain_id, created_at);
CREATE INDEX relay_jobs_by_signer ON relay_jobs (chain_id, signer, created_at);

-- Every signed transaction the relayer produced, stored before it was broadcast: the action
-- itself, fee-bumped replacements of it, cancelling no-ops, and no-ops filling a nonce gap
-- (those belong to no job). A replacement reuses its nonce, so at most one attempt per nonce
-- can ever be mined.
CREATE TABLE relay_attempts (
    tx_hash         BYTEA         PRIMARY KEY CHECK (length(tx_hash) = 32),
    chain_id        BIGINT        NOT NULL,
    job_id          TEXT          REFERENCES relay_jobs (id),
    kind            TEXT          NOT NULL CHECK (kind IN ('action', 'cancel', 'fill')),
    relayer         BYTEA         NOT NULL CHECK (length(relayer) = 20),
    nonce           BIGINT        NOT NULL CHECK (nonce >= 0),
    max_fee_per_gas NUMERIC(78,0) NOT NULL,
    max_priority_fee_per_gas NUMERIC(78,0) NOT NULL,
    gas_limit       BIGINT        NOT NULL,
    raw             BYTEA         NOT NULL,
    created_at      TIMESTAMPTZ   NOT NULL DEFAULT now(),
    -- Last time the node accepted (or already knew) these bytes, and the head block then; NULL
    -- until the first broadcast.
    broadcast_at    TIMESTAMPTZ,
    broadcast_block BIGINT,
    -- Set once its nonce is used on chain: 'mined' (this one), 'replaced' (another one).
    outcome         TEXT          CHECK (outcome IN ('mined', 'replaced'))
);
CREATE INDEX relay_attempts_by_job ON relay_attempts (job_id, created_at);
CREATE INDEX relay_attempts_open ON relay_attempts (chain_id, relayer, nonce) WHERE outcome IS NULL;
