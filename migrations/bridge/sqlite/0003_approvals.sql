-- Per-site approval by the agent and honest claims (issue 13, items 3, 8
-- and 10): the certificate seq of the ego key that approved each grant, so
-- that a refresh after the key was replaced is refused.

ALTER TABLE grants ADD COLUMN cert_seq INTEGER;
CREATE INDEX grants_sid_client ON grants (sid, client_id);

-- The approval an interaction's login ended with (JSON: when, how, the
-- certificate seq), for the consent step that follows it.
ALTER TABLE interactions ADD COLUMN approval TEXT;
