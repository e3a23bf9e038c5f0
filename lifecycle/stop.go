package lifecycle

import (
	"context"
	"os"

	"github.com/sandboxd/sandboxd/store"
)

// Stop stops a sandbox: SIGTERM, then SIGKILL after the grace period. Stopping a stopped
// sandbox is a no-op. While it stops, its route says asleep, so a request that arrives
// waits for the stop and then wakes it again.
func (m *Manager) Stop(ctx context.Context, id string) error {
	return m.stop(ctx, id, "api")
}

// stop stops a sandbox for a reason (api, idle, pressure, disk_quota) the observer counts.
func (m *Manager) stop(ctx context.Context, id, reason string) error {
	return m.locked(ctx, id, func(ctx context.Context) error { return m.stopLocked(ctx, id, reason) })
}

func (m *Manager) stopLocked(ctx context.Context, id, reason string) error {
	sb, ok := m.cached(id)
	if !ok {
		return errorf(CodeNotFound, "sandbox %s not found", id)
	}
	if sb.Status == store.StatusStopped {
		return nil
	}
	sb, err := m.setRuntime(ctx, sb, store.Runtime{Status: store.StatusStopping, ContainerID: sb.ContainerID, IP: sb.IP})
	if err != nil {
		return err
	}
	m.hook("stop.stopping")
	if err := m.stopContainer(ctx, sb.ContainerID); err != nil {
		return err
	}
	rt := store.Runtime{Status: store.StatusStopped, ContainerID: sb.ContainerID}
	if reason == reasonDiskQuota {
		rt.Error = "stopped: over its disk quota: " + m.diskOver(id) + ". Remove files through the files API, then start it again"
	}
	_, err = m.setRuntime(ctx, sb, rt)
	if err == nil && m.Observe.Stopped != nil {
		m.Observe.Stopped(reason)
	}
	return err
}

// Delete removes a sandbox's container and row. Its workspace stays on disk, and so do its
// tasks, so the id created again finds its files and its task history; Purge removes them.
func (m *Manager) Delete(ctx context.Context, id string) error {
	return m.locked(ctx, id, func(ctx context.Context) error { return m.delete(ctx, id, false) })
}

// delete removes the container, the saved config and the row (with the tasks when purge is
// set, in the same transaction). The config goes before the row: a crash in between leaves
// a row without a config, which the next boot writes again, never a config that --adopt
// would bring back as a sandbox deleted on purpose.
func (m *Manager) delete(ctx context.Context, id string, purge bool) error {
	if _, ok := m.cached(id); !ok {
		return errorf(CodeNotFound, "sandbox %s not found", id)
	}
	if err := m.removeContainers(ctx, id); err != nil {
		return err
	}
	m.removeConfig(id)
	var err error
	if purge {
		_, err = m.db.PurgeSandbox(ctx, id)
	} else {
		err = m.db.DeleteSandbox(ctx, id)
	}
	if err != nil {
		return internal(err, "delete sandbox %s", id)
	}
	m.removeRunDir(id)
	m.forget(id)
	return nil
}

// Purge deletes a sandbox, its workspace and everything stored about it but the audit log:
// its tasks and their events too (issue 11: a purged sandbox's task history came back
// with the next sandbox of the same id). It also purges what an earlier Delete kept.
func (m *Manager) Purge(ctx context.Context, id string) error {
	return m.locked(ctx, id, func(ctx context.Context) error { return m.purge(ctx, id) })
}

func (m *Manager) purge(ctx context.Context, id string) error {
	_, hadRow := m.cached(id)
	hadTasks := false
	if hadRow {
		if err := m.delete(ctx, id, true); err != nil {
			return err
		}
	} else {
		var err error
		if hadTasks, err = m.db.PurgeSandbox(ctx, id); err != nil {
			return internal(err, "purge the tasks of %s", id)
		}
	}
	existed, err := m.removeWorkspace(id)
	if err != nil {
		return err
	}
	if !hadRow && !existed && !hadTasks {
		return errorf(CodeNotFound, "sandbox %s not found", id)
	}
	if err := m.db.ReleaseUID(ctx, id); err != nil {
		return internal(err, "free the uid of %s", id)
	}
	// The deleted rows' bytes were zeroed in the database (secure_delete); this takes
	// their copies out of the write-ahead log (issue 12).
	if err := m.db.Checkpoint(ctx); err != nil {
		m.log.Warn("checkpoint after purge", "sandbox", id, "err", err)
	}
	return nil
}

func (m *Manager) removeRunDir(id string) {
	if err := os.RemoveAll(m.runDir(id)); err != nil {
		m.log.Warn("remove run dir", "sandbox", id, "err", err)
	}
}
