-- Issue 13: tenants, stored API tokens, and an audit log that says who, how it ended, and
-- which request.

-- The tenant whose token created the sandbox; '' for the operator's (admin) sandboxes.
ALTER TABLE sandboxes ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
CREATE INDEX sandboxes_tenant ON sandboxes (tenant, id);

-- Tokens an admin created through the API. Only the SHA-256 of the secret is kept: the
-- secret is shown once, at creation. tenant '' is an admin token.
CREATE TABLE api_tokens (
    name       TEXT    PRIMARY KEY,
    hash       BLOB    NOT NULL UNIQUE,
    tenant     TEXT    NOT NULL DEFAULT '',
    kind       TEXT    NOT NULL CHECK (kind IN ('api','e2b')),
    hint       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL
) WITHOUT ROWID;

ALTER TABLE audit_log ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN result TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_log_tenant ON audit_log (tenant, id);
