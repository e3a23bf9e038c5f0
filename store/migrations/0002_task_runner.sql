-- The running agent: its Docker exec, how far its output log was read, its deadline.
ALTER TABLE tasks ADD COLUMN exec_id TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN log_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN deadline INTEGER NOT NULL DEFAULT 0;
-- One active task per sandbox, enforced where it cannot race.
CREATE UNIQUE INDEX tasks_one_running ON tasks (sandbox_id) WHERE status = 'running';
