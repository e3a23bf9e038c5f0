-- Issue 18: snapshots of a sandbox's workspace and config, the checkpoint taken before each
-- agent task, and templates (snapshots an admin published for every tenant). The tree of
-- each lives under the data dir; a row is written once its tree is whole, and trees
-- without a row are removed at boot.
CREATE TABLE snapshots (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('snapshot','checkpoint','template')),
    sandbox_id TEXT    NOT NULL DEFAULT '',   -- '' for a template
    tenant     TEXT    NOT NULL DEFAULT '',   -- the sandbox's tenant; '' for the operator's and templates
    name       TEXT    NOT NULL DEFAULT '',
    task_id    TEXT    NOT NULL DEFAULT '',   -- the task a checkpoint was taken before
    source     TEXT    NOT NULL DEFAULT '',   -- the snapshot a template was published from
    method     TEXT    NOT NULL,              -- btrfs, reflink or copy
    config     TEXT    NOT NULL,              -- image, ports, labels, services (without env values), limits
    secrets    BLOB    NOT NULL,              -- env and service env values
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX snapshots_sandbox ON snapshots (sandbox_id, kind, created_at);
CREATE UNIQUE INDEX snapshots_template_name ON snapshots (name) WHERE kind = 'template';
CREATE INDEX snapshots_task ON snapshots (task_id) WHERE kind = 'checkpoint';
