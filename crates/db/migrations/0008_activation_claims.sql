-- An activation being handed to the relayer: `activate-escrow` claims the agreement (a short
-- transaction under its row lock), asks the relayer without holding that lock or its connection,
-- then links the relayer's job and moves the agreement to `activating` (a second short
-- transaction). A second submission meanwhile finds the claim and is refused; a claim left by a
-- crash is stale after a minute and may be taken again (the relayer answers the same package
-- with the same job, so nothing is done twice).
ALTER TABLE usage_agreements
    ADD COLUMN activation_claim TEXT,
    ADD COLUMN activation_claimed_at TIMESTAMPTZ,
    ADD CONSTRAINT usage_agreements_claim CHECK ((activation_claim IS NULL) = (activation_claimed_at IS NULL));
