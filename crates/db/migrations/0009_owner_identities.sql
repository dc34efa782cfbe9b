-- Owners signed in through an identity provider (RS256/ES256 tokens checked against its JWKS):
-- the issuer and subject their id derives from (`own_` + a hash of both). Owners made by
-- `pactum admin` for the local stack have neither.
ALTER TABLE owners
    ADD COLUMN issuer  TEXT,
    ADD COLUMN subject TEXT,
    ADD CONSTRAINT owners_identity UNIQUE (issuer, subject),
    ADD CONSTRAINT owners_identity_whole CHECK ((issuer IS NULL) = (subject IS NULL));
