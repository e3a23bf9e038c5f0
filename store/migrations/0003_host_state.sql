-- issue 11: how a sandbox's container last ended without sandboxd asking (it exited, was
-- killed from inside, or the kernel's OOM killer took it). Reason '' means it never has.
ALTER TABLE sandboxes ADD COLUMN last_exit_code   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sandboxes ADD COLUMN last_exit_reason TEXT    NOT NULL DEFAULT '';
ALTER TABLE sandboxes ADD COLUMN last_exit_at     INTEGER NOT NULL DEFAULT 0;
