-- Friends: people whose agents this agent met through an invite (a PAKE
-- keyed by the invite code). Each friendship belongs to one of the
-- person's egos; another ego of the same person shares nothing with it.
CREATE TABLE friends (
    id INTEGER PRIMARY KEY,
    ego_id TEXT NOT NULL REFERENCES egos (ego_id) ON DELETE CASCADE,
    -- The person's name for the friend (local only).
    petname TEXT NOT NULL,
    friend_ego_id TEXT NOT NULL,
    -- The friend's ego key and node (peer id bytes) when the invite ran.
    friend_ego_key BLOB NOT NULL,
    friend_peer_id BLOB NOT NULL,
    -- The six digits both people saw, to compare again later.
    fingerprint TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (ego_id, friend_ego_id),
    UNIQUE (ego_id, petname)
);
