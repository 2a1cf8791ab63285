-- Per-site approval by the agent and honest claims (issue 13, items 3, 8
-- and 10): how the agent approved the session's latest login (the value
-- of its signed answer: person, remembered_site, policy, or unknown for an
-- answer that does not say), and the certificate seq of the ego key that
-- approved each grant, so that a refresh after the key was replaced
-- several times is refused.

ALTER TABLE sessions ADD COLUMN approved_by TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE grants ADD COLUMN cert_seq BIGINT;
CREATE INDEX grants_sid_client ON grants (sid, client_id);

-- The approval an interaction's login ended with (JSON: when, how, the
-- certificate seq), for the consent step that follows it.
ALTER TABLE interactions ADD COLUMN approval TEXT;
