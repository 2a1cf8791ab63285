-- Bounds on what outsiders can grow (issue 12): the client address prefix
-- that interactions and challenges are counted by, which clients were
-- registered dynamically and whether they were ever used, and the limits
-- shared by every instance on one database (rate windows, the spent
-- proof-of-work tokens and their epoch).

ALTER TABLE interactions ADD COLUMN client_prefix TEXT NOT NULL DEFAULT '';
CREATE INDEX interactions_prefix ON interactions (client_prefix, created_at);
CREATE INDEX interactions_expiry ON interactions (expires_at);

ALTER TABLE challenges ADD COLUMN client_prefix TEXT NOT NULL DEFAULT '';
CREATE INDEX challenges_expiry ON challenges (expires_at);

ALTER TABLE clients ADD COLUMN dynamic BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN first_used_at BIGINT;

CREATE INDEX grants_client ON grants (client_id);
CREATE INDEX codes_grant ON codes (grant_id);
CREATE INDEX codes_expiry ON codes (expires_at);
CREATE INDEX tokens_expiry ON tokens (expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE rate_hits (
    key TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_hits_expiry ON rate_hits (expires_at);

CREATE TABLE pow_spent (
    epoch BIGINT NOT NULL,
    tag BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (epoch, tag)
);
CREATE INDEX pow_spent_expiry ON pow_spent (expires_at);

CREATE TABLE pow_state (
    id BIGINT PRIMARY KEY,
    epoch BIGINT NOT NULL,
    spent BIGINT NOT NULL
);
INSERT INTO pow_state (id, epoch, spent) VALUES (1, 1, 0);
