-- The certificate's authority epoch (docs/protocol.md, section 5): the
-- ego cache compares it before the certificate seq, so that a recovered
-- record (epoch + 1) replaces rotations of the lost key whatever their seqs.
ALTER TABLE egos ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
