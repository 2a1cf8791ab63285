-- Where a remembered site came from, so that an automatic approval can say
-- how it was made (docs/protocol.md, section 8: approved_by):
--   'remembered-site': the person approved a login to the site and asked,
--                      with `approve --remember`, to remember it;
--   'policy':          the person set a rule with `policy allow`.
-- Rows made before this column existed say 'policy': the agent cannot
-- know whether the person approved a login to the site first, and
-- 'policy' claims nothing about an earlier login. Both mean that the
-- person did not confirm the login at hand, which is what a site may ask.
ALTER TABLE policies ADD COLUMN origin TEXT NOT NULL DEFAULT 'policy'
    CHECK (origin IN ('policy', 'remembered-site'));
