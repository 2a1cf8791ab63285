-- The bridge's storage, SQLite flavour. Times are Unix seconds; booleans
-- are 0/1 integers; secrets are stored only as SHA-256 hashes (tokens,
-- codes, client secrets) or sealed with the master key (signing keys).

CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    secret_hash BLOB,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL,
    registration_token_hash BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    sealed_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    publish_until INTEGER
);

CREATE TABLE interactions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    request TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ego_id TEXT,
    session_sid TEXT,
    finished_at INTEGER
);

CREATE TABLE challenges (
    id TEXT PRIMARY KEY,
    interaction_id TEXT NOT NULL,
    ego_id TEXT NOT NULL,
    challenge BLOB NOT NULL,
    match_code INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    ego_pk BLOB,
    cert_seq INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE INDEX challenges_ego ON challenges (ego_id, status);
CREATE INDEX challenges_interaction ON challenges (interaction_id);

CREATE TABLE sessions (
    sid TEXT PRIMARY KEY,
    cookie_hash BLOB NOT NULL UNIQUE,
    ego_id TEXT NOT NULL,
    ego_pk BLOB NOT NULL,
    cert_seq INTEGER NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE INDEX sessions_ego ON sessions (ego_id);

CREATE TABLE consents (
    ego_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
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
    auth_time INTEGER NOT NULL,
    acr TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX grants_sid ON grants (sid);
CREATE INDEX grants_ego ON grants (ego_id);

CREATE TABLE codes (
    code_hash BLOB PRIMARY KEY,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

CREATE TABLE tokens (
    token_hash BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    rotated_at INTEGER
);
CREATE INDEX tokens_grant ON tokens (grant_id);

CREATE TABLE egos (
    ego_id TEXT PRIMARY KEY,
    record BLOB NOT NULL,
    chain_len INTEGER NOT NULL,
    cert_seq INTEGER NOT NULL,
    endpoints_seq INTEGER NOT NULL,
    chain_digest BLOB NOT NULL,
    cert_digest BLOB NOT NULL,
    fetched_at INTEGER NOT NULL
);
