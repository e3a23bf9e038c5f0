-- The desired state of every sandbox. Times are Unix milliseconds.
CREATE TABLE sandboxes (
    id              TEXT PRIMARY KEY,
    status          TEXT    NOT NULL CHECK (status IN ('creating','running','stopping','stopped','error')),
    image           TEXT    NOT NULL,
    memory_bytes    INTEGER NOT NULL,
    nano_cpus       INTEGER NOT NULL,
    idle_timeout_ms INTEGER NOT NULL DEFAULT 0,
    idle_policy     TEXT    NOT NULL DEFAULT 'sleep' CHECK (idle_policy IN ('sleep','always_on')),
    host_header     TEXT    NOT NULL DEFAULT '',
    container_id    TEXT    NOT NULL DEFAULT '',
    ip              TEXT    NOT NULL DEFAULT '',
    error           TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_active_at  INTEGER NOT NULL,
    keepalive_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sandboxes_status ON sandboxes (status);

CREATE TABLE sandbox_ports (
    sandbox_id TEXT    NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    PRIMARY KEY (sandbox_id, port)
) WITHOUT ROWID;

-- Values are secrets: only the container spec reads them, never an API read.
CREATE TABLE sandbox_env (
    sandbox_id TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (sandbox_id, key)
) WITHOUT ROWID;

CREATE TABLE sandbox_labels (
    sandbox_id TEXT NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (sandbox_id, key)
) WITHOUT ROWID;
CREATE INDEX sandbox_labels_kv ON sandbox_labels (key, value);

-- spec is the service's JSON as the API accepted it.
CREATE TABLE sandbox_services (
    sandbox_id TEXT    NOT NULL REFERENCES sandboxes (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    spec       TEXT    NOT NULL,
    PRIMARY KEY (sandbox_id, name)
) WITHOUT ROWID;

-- Tasks outlive their sandbox row on purpose: a result is history.
CREATE TABLE tasks (
    id            TEXT PRIMARY KEY,
    sandbox_id    TEXT    NOT NULL,
    agent         TEXT    NOT NULL,
    prompt        TEXT    NOT NULL,
    model         TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL CHECK (status IN ('running','succeeded','failed','cancelled')),
    result        TEXT    NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tasks_sandbox ON tasks (sandbox_id, created_at);
CREATE INDEX tasks_status ON tasks (status);

CREATE TABLE task_events (
    task_id TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    type    TEXT    NOT NULL,
    data    TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    detail TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_target ON audit_log (target, at);
