-- Issue 12: tenants isolated on disk.

-- Each sandbox's own uid. Not a column of sandboxes: delete removes the row and keeps the
-- workspace, and a re-created id must find its files owned by the same uid. Purge frees it.
CREATE TABLE sandbox_uids (
    sandbox_id TEXT    PRIMARY KEY,
    uid        INTEGER NOT NULL UNIQUE
) WITHOUT ROWID;

-- The disk quota asked for at create, in bytes; 0 takes the operator's default.
ALTER TABLE sandboxes ADD COLUMN disk_bytes INTEGER NOT NULL DEFAULT 0;

-- Secret values, sealed (store/seal.go). sandbox_env.value stays '' once sealed; a service's
-- spec keeps no env, which is in env_sealed. Values stored in clear before this migration
-- are sealed by the store when it opens.
ALTER TABLE sandbox_env ADD COLUMN sealed BLOB;
ALTER TABLE sandbox_services ADD COLUMN env_sealed BLOB;
