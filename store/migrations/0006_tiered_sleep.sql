-- Issue 14: tiered sleep (pause, then stop) and the wake policy.
-- Before this file runs, migrate.go's step for version 6 (allowPausedStatus, rebuild.go)
-- rebuilt sandboxes so that its status CHECK admits 'paused'.

-- Which requests wake the sandbox from sleep: 'navigation' (people opening a page, and
-- clients without browser fetch metadata) or 'any'.
ALTER TABLE sandboxes ADD COLUMN wake_on TEXT NOT NULL DEFAULT 'navigation' CHECK (wake_on IN ('navigation','any'));
-- How long the sandbox stays paused before it is stopped; 0: the operator's default.
ALTER TABLE sandboxes ADD COLUMN stop_after_ms INTEGER NOT NULL DEFAULT 0;
-- When it was paused (Unix ms); 0 unless status is 'paused'.
ALTER TABLE sandboxes ADD COLUMN paused_at INTEGER NOT NULL DEFAULT 0;
