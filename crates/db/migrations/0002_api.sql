-- The API's principals and the shared idempotency store.

-- Owners: the humans (or organisations) behind agents. Authenticated with JWTs signed by the
-- identity provider (locally: the configured HS256 secret); `id` is the JWT subject.
CREATE TABLE owners (
    id         TEXT        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:@-]{1,128}$'),
    name       TEXT        NOT NULL,
    email      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Agents act for an owner from one wallet address (the buyer or seller of its agreements).
CREATE TABLE agents (
    id             TEXT        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,128}$'),
    owner_id       TEXT        NOT NULL REFERENCES owners (id),
    name           TEXT        NOT NULL,
    wallet_address BYTEA       NOT NULL CHECK (length(wallet_address) = 20),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX agents_by_owner ON agents (owner_id);
CREATE INDEX agents_by_wallet ON agents (wallet_address);

-- Agent API keys. The secret is shown once at creation; only its SHA-256 is stored (the secret
-- is 256 random bits, so a fast hash is enough). A key is revoked, never deleted.
CREATE TABLE api_keys (
    id          TEXT        PRIMARY KEY CHECK (id ~ '^[a-z0-9]{16}$'),
    agent_id    TEXT        NOT NULL REFERENCES agents (id),
    secret_hash BYTEA       NOT NULL CHECK (length(secret_hash) = 32),
    label       TEXT        NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX api_keys_by_agent ON api_keys (agent_id);

-- Each revocation, with who asked and why (one row per effect).
CREATE TABLE api_key_revocations (
    id         TEXT        PRIMARY KEY CHECK (id ~ '^rev_[a-z0-9]{16}$'),
    key_id     TEXT        NOT NULL UNIQUE REFERENCES api_keys (id),
    revoked_by TEXT        NOT NULL,
    reason     TEXT        NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Idempotency records of write requests, per authenticated principal and key. The first request
-- claims the key (in_progress) and stores its response (completed); a retry with the same body
-- gets that response again, a different body is refused, and a concurrent duplicate waits.
CREATE TABLE idempotency_keys (
    principal       TEXT        NOT NULL,
    key             TEXT        NOT NULL,
    method          TEXT        NOT NULL,
    path            TEXT        NOT NULL,
    request_hash    BYTEA       NOT NULL CHECK (length(request_hash) = 32),
    state           TEXT        NOT NULL CHECK (state IN ('in_progress', 'completed')),
    response_status INTEGER,
    response_type   TEXT,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
