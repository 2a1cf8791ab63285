-- The certificate's authority epoch (docs/protocol.md, section 5): the
-- ego cache compares it before the certificate seq, so that a recovered
-- record (epoch + 1) replaces rotations of the lost key whatever their seqs.
ALTER TABLE egos ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;

-- The epoch of the certificate whose key approved each login, so that a
-- recovery ends the grants made before it (docs/integrating.md).
ALTER TABLE challenges ADD COLUMN cert_epoch BIGINT;
ALTER TABLE sessions ADD COLUMN cert_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE grants ADD COLUMN cert_epoch BIGINT;
