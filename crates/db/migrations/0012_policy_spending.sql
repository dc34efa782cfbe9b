-- What each agent has committed through activations, for its owner's daily and monthly limits.
-- A row is written in the transaction that claims an activation, under a lock on the agent's
-- row, after the limits were checked against the sum of the agent's rows in the window: so
-- concurrent activations cannot together pass a limit. A submission the relayer refuses removes
-- its row; a new submission of the same agreement replaces it.
CREATE TABLE policy_spending (
    agreement_id TEXT        PRIMARY KEY REFERENCES usage_agreements (id),
    agent_id     TEXT        NOT NULL REFERENCES agents (id),
    cents        BIGINT      NOT NULL CHECK (cents > 0),
    counted_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX policy_spending_by_agent ON policy_spending (agent_id, counted_at);
