-- Circles of friends (docs/agent.md, "Circles").

-- Owner side: the friends chosen for each ego's circle, and the threshold
-- asked for (NULL: the default, a majority of at least 2).
CREATE TABLE circle_plan (
    ego_id TEXT NOT NULL REFERENCES egos (ego_id) ON DELETE CASCADE,
    friend_id INTEGER NOT NULL REFERENCES friends (id) ON DELETE CASCADE,
    PRIMARY KEY (ego_id, friend_id)
);
ALTER TABLE egos ADD COLUMN threshold INTEGER;

-- Owner side: the circle in force once shared. `public` is the encoded
-- public side (members and the dealer's commitment); `members` maps each
-- FROST member id to a friend row: JSON [[member, friend_id], ...].
CREATE TABLE circles (
    ego_id TEXT PRIMARY KEY REFERENCES egos (ego_id) ON DELETE CASCADE,
    circle_id BLOB NOT NULL,
    generation INTEGER NOT NULL,
    threshold INTEGER NOT NULL,
    public BLOB NOT NULL,
    members TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Member side: shares this agent holds of friends' circles, sealed like
-- every secret (bound to the owner's ego and the generation).
CREATE TABLE held_shares (
    owner_ego_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    -- Which of this agent's egos is the friend, and the friend row.
    my_ego_id TEXT NOT NULL REFERENCES egos (ego_id) ON DELETE CASCADE,
    friend_id INTEGER NOT NULL REFERENCES friends (id) ON DELETE CASCADE,
    sealed BLOB NOT NULL,
    last_signed_at INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner_ego_id, generation)
);
