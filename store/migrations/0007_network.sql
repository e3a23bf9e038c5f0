-- Issue 15: each sandbox's egress policy. egress is none, proxy or open; allow is the
-- sandbox's own allowlist as a JSON array of the entries lifecycle accepted. Sandboxes made
-- before the policy existed reached everything: they are open.
CREATE TABLE sandbox_network (
    sandbox_id TEXT PRIMARY KEY REFERENCES sandboxes (id) ON DELETE CASCADE,
    egress     TEXT NOT NULL CHECK (egress IN ('none','proxy','open')),
    allow      TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
INSERT INTO sandbox_network (sandbox_id, egress) SELECT id, 'open' FROM sandboxes;
