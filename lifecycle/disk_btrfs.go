package lifecycle

import (
	"os"
	"syscall"

	"github.com/sandboxd/sandboxd/internal/btrfs"
	"github.com/sandboxd/sandboxd/store"
)

// The btrfs side of disk quotas: qgroups turned on for the data dir's filesystem, each
// workspace's limit, and its usage read back.

// btrfsQuotas turns qgroups on for the filesystem of dir and finds their sysfs.
func btrfsQuotas(dir string) (diskFS, error) {
	f, err := os.Open(dir)
	if err != nil {
		return diskFS{}, err
	}
	defer f.Close()
	if err := btrfs.EnableQuota(f); err != nil {
		return diskFS{}, err
	}
	qg, err := btrfs.OpenQgroupSysfs(f)
	if err != nil {
		return diskFS{}, err
	}
	profile, err := btrfsSeccompProfile()
	if err != nil {
		return diskFS{}, err
	}
	return diskFS{kind: EnforcedBtrfs, qgroups: qg, seccomp: profile}, nil
}

// limitWorkspace applies sb's quota to its workspace subvolume and the reserve to its state
// subvolume, on btrfs. A workspace that is not a subvolume (made before issue 12) is
// measured by the scan instead.
func (m *Manager) limitWorkspace(sb store.Sandbox) error {
	if m.disk.kind != EnforcedBtrfs {
		return nil
	}
	ws, state, err := m.openSubvolumes(sb.ID)
	if err != nil {
		return err
	}
	if ws == nil {
		m.log.Info("workspace from before btrfs quotas is not a subvolume: its quota is checked by the scan", "sandbox", sb.ID)
		return nil
	}
	defer ws.Close()
	if state != nil {
		defer state.Close()
		if err := btrfs.Limit(state, stateReserve); err != nil {
			return err
		}
	}
	return btrfs.Limit(ws, m.quotaOf(sb))
}

// openSubvolumes opens a workspace and its state dir where each is a subvolume's root (nil
// where not). The state dir is opened through os.Root without following a symlink, as the
// sandbox may have put one there.
func (m *Manager) openSubvolumes(id string) (ws, state *os.File, err error) {
	ws, err = os.Open(m.workspaceDir(id))
	if err != nil {
		return nil, nil, err
	}
	if !btrfs.IsSubvolume(ws) {
		ws.Close()
		return nil, nil, nil
	}
	root, err := os.OpenRoot(m.workspaceDir(id))
	if err != nil {
		ws.Close()
		return nil, nil, err
	}
	defer root.Close()
	state, err = root.OpenFile(stateDir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil || !btrfs.IsSubvolume(state) {
		if state != nil {
			state.Close()
		}
		state = nil
	}
	return ws, state, nil
}

// btrfsUsed is the bytes the qgroups of a workspace and its state dir reference; ok is
// false when the workspace is not a subvolume.
func (m *Manager) btrfsUsed(id string) (used int64, ok bool) {
	ws, state, err := m.openSubvolumes(id)
	if err != nil || ws == nil {
		return 0, false
	}
	defer ws.Close()
	if state != nil {
		defer state.Close()
	}
	for _, f := range []*os.File{ws, state} {
		if f == nil {
			continue
		}
		vol, err := btrfs.SubvolumeID(f)
		if err != nil {
			return 0, false
		}
		n, err := m.disk.qgroups.Referenced(vol)
		if err != nil {
			return 0, false
		}
		used += n
	}
	return used, true
}
