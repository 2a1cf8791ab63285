-- Pushed authorization requests (RFC 9126) and DPoP (RFC 9449), PostgreSQL flavour.
--
-- pushed_requests: a request a client pushed to /par, until it is used
-- once at /authorize or expires. Only the SHA-256 of the request_uri's
-- random part is stored. Bounded per client and in all (oidc settings).
--
-- dpop_proofs: the proofs already accepted (SHA-256 of key thumbprint and
-- jti), each until its iat leaves the acceptance window, so that a replay
-- is refused by every instance sharing the database. Bounded.
--
-- tokens.jkt: the RFC 7638 thumbprint of the key a token is bound to
-- (NULL: a bearer token). codes.dpop_jkt: the key a code can only be
-- redeemed with (RFC 9449 §10; NULL: any or none).

CREATE TABLE pushed_requests (
    handle_hash BYTEA PRIMARY KEY,
    client_id TEXT NOT NULL,
    request TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pushed_requests_client ON pushed_requests (client_id);
CREATE INDEX pushed_requests_expiry ON pushed_requests (expires_at);

CREATE TABLE dpop_proofs (
    proof_hash BYTEA PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expiry ON dpop_proofs (expires_at);

ALTER TABLE tokens ADD COLUMN jkt TEXT;
ALTER TABLE codes ADD COLUMN dpop_jkt TEXT;
