package lifecycle

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle/snapshot"
	"github.com/sandboxd/sandboxd/store"
)

// Task checkpoints (issue 18): before each agent task the runner takes a snapshot of the
// sandbox (kind checkpoint), which RevertTask restores and from which the task's
// files_changed is computed. A sandbox keeps its newest TaskCheckpoints of them, none older
// than TaskCheckpointAge: the older ones are pruned when a new one is taken and at boot.

// DefaultTaskCheckpointAge is the age past which a checkpoint is pruned when
// Config.TaskCheckpointAge is zero.
const DefaultTaskCheckpointAge = 7 * 24 * time.Hour

// Checkpoint takes the checkpoint of task taskID, about to run on sandbox id, and prunes
// old ones. It returns the checkpoint's tree, which the task's end compares with the
// workspace.
func (m *Manager) Checkpoint(ctx context.Context, id, taskID string) (string, error) {
	if !taskIDPattern.MatchString(taskID) {
		return "", errorf(CodeInvalid, "task id %q is invalid", taskID)
	}
	var dir string
	err := m.locked(ctx, id, func(ctx context.Context) error {
		sb, ok := m.cached(id)
		if !ok {
			return errorf(CodeNotFound, "sandbox %s not found", id)
		}
		s, err := m.takeSnapshot(ctx, sb, store.SnapshotCheckpoint, "", taskID)
		if err != nil {
			return err
		}
		dir = m.snapshotDir(s)
		m.pruneCheckpoints(ctx, id)
		return nil
	})
	return dir, err
}

// CheckpointDir is the tree of task taskID's checkpoint, if it still has one.
func (m *Manager) CheckpointDir(ctx context.Context, id, taskID string) (string, bool) {
	s, err := m.taskCheckpoint(ctx, id, taskID)
	if err != nil {
		return "", false
	}
	return m.snapshotDir(s), true
}

// DropCheckpoint removes the checkpoint of a task that never started.
func (m *Manager) DropCheckpoint(ctx context.Context, id, taskID string) {
	err := m.locked(ctx, id, func(ctx context.Context) error {
		s, err := m.taskCheckpoint(ctx, id, taskID)
		if err != nil {
			return nil
		}
		return m.dropSnapshot(ctx, s)
	})
	if err != nil {
		m.log.Warn("drop the checkpoint of a task that did not start", "sandbox", id, "task", taskID, "err", err)
	}
}

func (m *Manager) checkpointsKept() (int, time.Duration) {
	keep, age := m.cfg.TaskCheckpoints, m.cfg.TaskCheckpointAge
	if keep <= 0 {
		keep = DefaultTaskCheckpoints
	}
	if age <= 0 {
		age = DefaultTaskCheckpointAge
	}
	return keep, age
}

// pruneCheckpoints removes a sandbox's checkpoints past the newest kept and older than the
// age kept. The caller holds its lock.
func (m *Manager) pruneCheckpoints(ctx context.Context, id string) {
	keep, age := m.checkpointsKept()
	gone, err := m.db.PruneCheckpoints(ctx, id, keep, m.now().Add(-age))
	if err != nil {
		m.log.Warn("prune task checkpoints", "sandbox", id, "err", err)
	}
	for _, s := range gone {
		m.removeTree(m.snapshotDir(s))
	}
}

// bootSnapshots, at boot, removes what a crash left: half-made copies beside the
// workspaces, and snapshot trees without a row (a crash between the copy and its row, or
// between a row's delete and its tree's); and prunes checkpoints past their age.
func (m *Manager) bootSnapshots(ctx context.Context, rows []store.Sandbox) {
	m.probeCloning()
	if err := snapshot.CleanTemp(m.workspacesDir()); err != nil {
		m.log.Warn("remove half-made copies", "err", err)
	}
	all, err := m.db.AllSnapshots(ctx)
	if err != nil {
		m.log.Warn("list snapshots; their trees stay as they are", "err", err)
		return
	}
	known := map[string]bool{}
	for _, s := range all {
		if ValidSnapshotID(s.ID) && (s.Kind == store.SnapshotTemplate || ValidID(s.SandboxID)) {
			known[m.snapshotDir(s)] = true // a row that names no path of ours leaves its tree unknown
		}
	}
	m.removeUnknown(m.templatesDir(), known)
	top := filepath.Join(m.cfg.DataDir, "snapshots")
	entries, err := os.ReadDir(top)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("read the snapshots dir", "err", err)
	}
	for _, e := range entries {
		if !ValidID(e.Name()) {
			continue
		}
		dir := filepath.Join(top, e.Name())
		m.removeUnknown(dir, known)
		os.Remove(dir) // when empty
	}
	for _, sb := range rows {
		m.pruneCheckpoints(ctx, sb.ID)
	}
}

// removeUnknown removes the entries of dir that no snapshot row names.
func (m *Manager) removeUnknown(dir string, known map[string]bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if !known[p] {
			m.log.Info("removing a snapshot tree without a row", "dir", p)
			m.removeTree(p)
		}
	}
}

// removeSnapshots removes every snapshot tree of a purged sandbox (the store removed the
// rows with the sandbox's).
func (m *Manager) removeSnapshots(id string) {
	dir := m.snapshotsDir(id)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	for _, e := range entries {
		m.removeTree(filepath.Join(dir, e.Name()))
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("remove the snapshots dir of a purged sandbox", "sandbox", id, "err", err)
	}
}
