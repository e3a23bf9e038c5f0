package lifecycle

import (
	"context"
	"errors"
	"regexp"

	"github.com/sandboxd/sandboxd/lifecycle/snapshot"
	"github.com/sandboxd/sandboxd/store"
)

// Restore puts one of a sandbox's snapshots (or task checkpoints) back into its workspace
// (issue 18). The workspace goes back as the snapshot has it, byte for byte; the state dir
// (logs) and the sandbox's config stay as they are. A running sandbox is stopped for it
// and started again, so its services restart on the restored files (its container
// mounted the old tree, which the restore replaces by name); a stopped or paused one
// (issue 14) is stopped and wakes on it. Refused while a task runs, and then nothing
// changes.
func (m *Manager) Restore(ctx context.Context, id, snapID string) (store.Sandbox, error) {
	err := m.locked(ctx, id, func(ctx context.Context) error {
		sb, ok := m.cached(id)
		if !ok {
			return errorf(CodeNotFound, "sandbox %s not found", id)
		}
		s, err := m.sandboxSnapshot(ctx, id, snapID)
		if err != nil {
			return err
		}
		return m.restoreLocked(ctx, sb, s)
	})
	if err != nil {
		return store.Sandbox{}, err
	}
	return m.Get(ctx, id)
}

var taskIDPattern = regexp.MustCompile(`^[a-z0-9]{1,64}$`)

// RevertTask puts the workspace back as it was before a task, from the checkpoint taken
// when it started: Restore of that checkpoint. A task whose checkpoint was pruned (or that
// is unknown) is not found; a task that still runs is a conflict.
func (m *Manager) RevertTask(ctx context.Context, id, taskID string) (store.Sandbox, error) {
	err := m.locked(ctx, id, func(ctx context.Context) error {
		sb, ok := m.cached(id)
		if !ok {
			return errorf(CodeNotFound, "sandbox %s not found", id)
		}
		s, err := m.taskCheckpoint(ctx, id, taskID)
		if err != nil {
			return err
		}
		return m.restoreLocked(ctx, sb, s)
	})
	if err != nil {
		return store.Sandbox{}, err
	}
	return m.Get(ctx, id)
}

// taskCheckpoint returns the checkpoint of a task of sandbox id.
func (m *Manager) taskCheckpoint(ctx context.Context, id, taskID string) (store.Snapshot, error) {
	notFound := errorf(CodeNotFound, "task %q of sandbox %s has no checkpoint: the task is unknown, or its checkpoint was pruned", taskID, id)
	if !taskIDPattern.MatchString(taskID) {
		return store.Snapshot{}, notFound
	}
	s, err := m.db.TaskCheckpoint(ctx, taskID)
	if errors.Is(err, store.ErrNotFound) || err == nil && s.SandboxID != id {
		return store.Snapshot{}, notFound
	}
	if err != nil {
		return store.Snapshot{}, internal(err, "read the checkpoint of task %s", taskID)
	}
	return s, nil
}

// restoreLocked restores s into sb's workspace. The caller holds sb's lock.
func (m *Manager) restoreLocked(ctx context.Context, sb store.Sandbox, s store.Snapshot) error {
	if t, ok, err := m.db.ActiveTask(ctx, sb.ID); err != nil {
		return internal(err, "read tasks of %s", sb.ID)
	} else if ok {
		return errorf(CodeConflict, "sandbox %s runs task %s: cancel it or wait for it to end, then restore", sb.ID, t.ID)
	}
	// A running or paused sandbox's container holds the old tree: it stops. One that was
	// running starts again on the new tree; a paused one was asleep, and wakes on it.
	up := sb.Status == store.StatusRunning
	if sb.Status != store.StatusStopped {
		if err := m.stopLocked(ctx, sb.ID, "restore"); err != nil {
			return err
		}
	}
	res, err := snapshot.Restore(ctx, m.snapshotDir(s), m.workspaceDir(sb.ID), snapshot.Options{Exclude: snapshotExclude})
	if err != nil {
		// The workspace is as it was: bring the sandbox back as it was too.
		if up {
			if _, serr := m.startLocked(ctx, sb.ID); serr != nil {
				m.log.Error("start again after a failed restore", "sandbox", sb.ID, "err", serr)
			}
		}
		return copyError(err, "restore snapshot %s into %s", s.ID, sb.ID)
	}
	// A new tree: give it to the sandbox's uid (a snapshot from before it moved to a uid
	// of its own holds the old one), and, on btrfs, the new subvolume the quota.
	if _, err := m.ensureWorkspace(sb); err != nil {
		return err
	}
	if res.Leftover != "" {
		m.log.Warn("restored; the replaced tree could not be removed, the next boot removes it", "sandbox", sb.ID, "dir", res.Leftover)
	}
	m.log.Info("snapshot restored", "sandbox", sb.ID, "snapshot", s.ID, "kind", s.Kind, "method", res.Method)
	if up {
		if _, err := m.startLocked(ctx, sb.ID); err != nil {
			return err
		}
	}
	return nil
}
