-- An agent's wallet proves it acts for the agent when the owner registers it: the wallet's EIP-712
-- signature over (owner, agent, wallet, deadline) is kept with the agent, for audit. An agent
-- without one (registered before proofs existed) is refused at authentication. One wallet, one
-- agent: a wallet's agreements are seen by the one agent that proved it.
ALTER TABLE agents
    ADD COLUMN wallet_proof          BYTEA,
    ADD COLUMN wallet_proof_deadline BIGINT,
    ADD CONSTRAINT agents_wallet_proof_whole
        CHECK ((wallet_proof IS NULL) = (wallet_proof_deadline IS NULL));
DROP INDEX agents_by_wallet;
CREATE UNIQUE INDEX agents_wallet ON agents (wallet_address);
