-- The bridge's storage, PostgreSQL flavour. Times are Unix seconds; booleans
-- are 0/1 integers; secrets are stored only as SHA-256 hashes (tokens,
-- codes, client secrets) or sealed with the master key (signing keys).

CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    secret_hash BYTEA,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL,
    registration_token_hash BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    sealed_key BYTEA NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    publish_until BIGINT
);

CREATE TABLE interactions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    request TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ego_id TEXT,
    session_sid TEXT,
    finished_at BIGINT
);

CREATE TABLE challenges (
    id TEXT PRIMARY KEY,
    interaction_id TEXT NOT NULL,
    ego_id TEXT NOT NULL,
    challenge BYTEA NOT NULL,
    match_code BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    ego_pk BYTEA,
    cert_seq BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX challenges_ego ON challenges (ego_id, status);
CREATE INDEX challenges_interaction ON challenges (interaction_id);

CREATE TABLE sessions (
    sid TEXT PRIMARY KEY,
    cookie_hash BYTEA NOT NULL UNIQUE,
    ego_id TEXT NOT NULL,
    ego_pk BYTEA NOT NULL,
    cert_seq BIGINT NOT NULL,
    auth_time BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX sessions_ego ON sessions (ego_id);

CREATE TABLE consents (
    ego_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (ego_id, client_id)
);

CREATE TABLE grants (
    grant_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    ego_id TEXT NOT NULL,
    sid TEXT,
    sub TEXT NOT NULL,
    scope TEXT NOT NULL,
    claims TEXT,
    nonce TEXT,
    auth_time BIGINT NOT NULL,
    acr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_sid ON grants (sid);
CREATE INDEX grants_ego ON grants (ego_id);

CREATE TABLE codes (
    code_hash BYTEA PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE tokens (
    token_hash BYTEA PRIMARY KEY,
    kind TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    rotated_at BIGINT
);
CREATE INDEX tokens_grant ON tokens (grant_id);

CREATE TABLE egos (
    ego_id TEXT PRIMARY KEY,
    record BYTEA NOT NULL,
    chain_len BIGINT NOT NULL,
    cert_seq BIGINT NOT NULL,
    endpoints_seq BIGINT NOT NULL,
    chain_digest BYTEA NOT NULL,
    cert_digest BYTEA NOT NULL,
    fetched_at BIGINT NOT NULL
);
