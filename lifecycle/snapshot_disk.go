package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/sandboxd/sandboxd/internal/btrfs"
	"github.com/sandboxd/sandboxd/lifecycle/snapshot"
	"github.com/sandboxd/sandboxd/store"
)

// Snapshots count toward their sandbox's disk usage and quota (issues 18 and 12): the
// sandbox's disk "used" is its home plus what its snapshots and checkpoints hold alone,
// "snapshots" that part. What a snapshot holds alone is, for a btrfs subvolume snapshot,
// its qgroup's exclusive bytes; for a reflinked tree, the extents it no longer shares; for
// a copy, all its blocks (snapshot.Usage). A CoW snapshot costs next to nothing when taken
// and grows as the workspace moves away from it.
//
// The quota scan compares the whole with the quota, and a sandbox over it is stopped and
// refused a start as for its files, with a reason that names its snapshots (the remedy is
// to delete some). Where snapshots are full copies, one that would not fit is refused
// before it is made, and a task's checkpoint first prunes older checkpoints to fit.
// Inodes of snapshots do not count toward the inode quota.

// snapshotCosts caches what copied snapshot trees hold: a copy never changes, and on a
// filesystem that cannot clone every snapshot is one.
type snapshotCosts struct {
	cloning atomic.Bool // the data dir clones files (Boot finds out)
	mu      sync.Mutex
	copies  map[string]int64 // tree → bytes
}

// probeCloning finds out, at boot, how snapshots will be made here, and says so once.
func (m *Manager) probeCloning() {
	root := filepath.Join(m.cfg.DataDir, "snapshots")
	if err := os.MkdirAll(root, 0o700); err != nil {
		m.log.Warn("create the snapshots dir", "err", err)
		return
	}
	clones := snapshot.CanClone(root)
	m.snapCosts.cloning.Store(clones)
	switch {
	case m.disk.kind == EnforcedBtrfs:
		m.log.Info("snapshots: btrfs subvolume snapshots of workspaces (reflinks for any that is not a subvolume)")
	case clones:
		m.log.Info("snapshots: reflinked trees (copy-on-write): a snapshot costs its metadata when taken")
	default:
		m.log.Info("snapshots: full copies, as this data dir's filesystem cannot clone files (btrfs or XFS with reflink=1 can); each costs what the workspace holds, against its quota")
	}
}

// snapshotsUsage is the bytes a sandbox's snapshots and checkpoints hold alone.
func (m *Manager) snapshotsUsage(id string) int64 {
	dir := m.snapshotsDir(id)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range entries {
		if ValidSnapshotID(e.Name()) {
			total += m.treeCost(filepath.Join(dir, e.Name()))
		}
	}
	return total
}

// treeCost is what one snapshot tree holds alone.
func (m *Manager) treeCost(p string) int64 {
	if m.disk.kind == EnforcedBtrfs {
		if n, ok := m.btrfsExclusive(p); ok {
			return n
		}
	}
	cache := !m.snapCosts.cloning.Load()
	if cache {
		m.snapCosts.mu.Lock()
		n, ok := m.snapCosts.copies[p]
		m.snapCosts.mu.Unlock()
		if ok {
			return n
		}
	}
	n, err := snapshot.Usage(p)
	if err != nil {
		return n
	}
	if cache {
		m.snapCosts.mu.Lock()
		if m.snapCosts.copies == nil {
			m.snapCosts.copies = map[string]int64{}
		}
		m.snapCosts.copies[p] = n
		m.snapCosts.mu.Unlock()
	}
	return n
}

// forgetCost drops a removed tree from the cache.
func (m *Manager) forgetCost(p string) {
	m.snapCosts.mu.Lock()
	delete(m.snapCosts.copies, p)
	m.snapCosts.mu.Unlock()
}

// btrfsExclusive is the exclusive bytes of the subvolume at p, when it is one.
func (m *Manager) btrfsExclusive(p string) (int64, bool) {
	f, err := os.Open(p)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if !btrfs.IsSubvolume(f) {
		return 0, false
	}
	vol, err := btrfs.SubvolumeID(f)
	if err != nil {
		return 0, false
	}
	n, err := m.disk.qgroups.Exclusive(vol)
	return n, err == nil
}

// addSnapshots adds sb's snapshots to u (measured by issue 12's scan) and says why they
// put it over its quota ("" when they do not). wsBytes is what its home takes.
func (m *Manager) addSnapshots(sb store.Sandbox, u *store.DiskUsage, wsBytes int64) string {
	u.Snapshots = m.snapshotsUsage(sb.ID)
	u.Used += u.Snapshots
	if u.Snapshots == 0 || u.Quota == 0 || wsBytes+u.Snapshots <= u.Quota {
		return ""
	}
	return fmt.Sprintf("it uses %s of its %s disk quota, %s of it in snapshots and task checkpoints: delete some "+
		"(DELETE /v1/sandboxes/%s/snapshots/<snapshot>)", formatBytes(wsBytes+u.Snapshots), formatBytes(u.Quota), formatBytes(u.Snapshots), sb.ID)
}

// roomForCopy refuses, where snapshots are full copies, one that would put sb over its
// quota: it costs what the home holds. A task's checkpoint first prunes the oldest
// checkpoints until it fits. CoW snapshots cost next to nothing when taken: no check.
func (m *Manager) roomForCopy(ctx context.Context, sb store.Sandbox, kind string) error {
	quota := m.quotaOf(sb)
	if quota == 0 || m.snapCosts.cloning.Load() {
		return nil
	}
	ws, err := snapshot.Usage(m.workspaceDir(sb.ID))
	if errors.Is(err, snapshot.ErrTooDeep) {
		return copyError(err, "measure the workspace of %s", sb.ID)
	}
	need := func() int64 { return ws + m.snapshotsUsage(sb.ID) + ws - quota }
	for need() > 0 {
		if kind != store.SnapshotCheckpoint || !m.dropOldestCheckpoint(ctx, sb.ID) {
			return errorf(CodeDiskQuota, "a snapshot of sandbox %s would take %s (this data dir copies snapshots in full), "+
				"which its %s disk quota has no room for beside its files and snapshots: delete snapshots "+
				"(DELETE /v1/sandboxes/%s/snapshots/<snapshot>) or files", sb.ID, formatBytes(ws), formatBytes(quota), sb.ID)
		}
	}
	return nil
}

// dropOldestCheckpoint removes a sandbox's oldest task checkpoint; false when it has none.
func (m *Manager) dropOldestCheckpoint(ctx context.Context, id string) bool {
	list, err := m.db.ListSnapshots(ctx, id)
	if err != nil {
		return false
	}
	for i := len(list) - 1; i >= 0; i-- { // newest first: the oldest is last
		if list[i].Kind == store.SnapshotCheckpoint {
			m.log.Info("pruning a task checkpoint to make room for a new one", "sandbox", id, "snapshot", list[i].ID)
			return m.dropSnapshot(ctx, list[i]) == nil
		}
	}
	return false
}
