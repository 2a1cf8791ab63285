-- The agent's keystore. Secrets are stored only sealed (XChaCha20-Poly1305
-- under the data key, which is itself wrapped by the key-encryption key);
-- see docs/agent.md, "Keystore".

-- One row: how the data key is protected.
CREATE TABLE keystore (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    format INTEGER NOT NULL,
    protection TEXT NOT NULL CHECK (protection IN ('passphrase', 'keyfile')),
    kdf_salt BLOB,
    kdf_memory_kib INTEGER,
    kdf_iterations INTEGER,
    kdf_parallelism INTEGER,
    wrapped_key BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- The egos this agent owns.
CREATE TABLE egos (
    ego_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- The current record (canonical CBOR), as published.
    record BLOB NOT NULL,
    -- Random, never published; it names the circle in the recovery kit.
    circle_id BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_published_at INTEGER,
    last_error TEXT
);

-- Sealed secrets of each ego: root key, whole circle key, ego key and the
-- device key (the libp2p identity of the ego's node).
CREATE TABLE secrets (
    ego_id TEXT NOT NULL REFERENCES egos (ego_id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('root', 'circle', 'ego', 'device')),
    sealed BLOB NOT NULL,
    PRIMARY KEY (ego_id, kind)
);

-- Sites the person has approved before; `auto` signs without a prompt.
CREATE TABLE policies (
    id INTEGER PRIMARY KEY,
    ego_id TEXT NOT NULL REFERENCES egos (ego_id) ON DELETE CASCADE,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    auto INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (ego_id, issuer, client_id)
);

-- Bans. Site and bridge bans belong to one ego (a site must not learn that
-- two egos share an agent); program bans ('' ego) to the whole agent.
-- Unused columns hold '' so that the UNIQUE constraint applies.
CREATE TABLE bans (
    id INTEGER PRIMARY KEY,
    ego_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('site', 'bridge', 'program')),
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    program TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('user', 'not-me')),
    -- For "not me" reports: what the request said (JSON).
    detail TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (ego_id, kind, issuer, client_id, program)
);
