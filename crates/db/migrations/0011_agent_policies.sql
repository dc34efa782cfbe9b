-- Owner policies: the rules an owner sets on what one of its agents may commit to (see
-- core::policy). Versioned: each write names the version it replaces (HTTP If-Match), so two
-- owners' edits never silently overwrite each other; every version is kept for audit. No row
-- means the default policy (no rule), version 0.
CREATE TABLE agent_policies (
    agent_id   TEXT        NOT NULL REFERENCES agents (id),
    version    BIGINT      NOT NULL CHECK (version >= 1),
    rules      JSONB       NOT NULL CHECK (jsonb_typeof(rules) = 'object'),
    updated_by TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, version)
);
