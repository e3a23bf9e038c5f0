package lifecycle

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sandboxd/sandboxd/internal/btrfs"
	"github.com/sandboxd/sandboxd/store"
)

// A workspace is <data>/workspaces/<id>, mode 0700 and owned by the sandbox's uid, under a
// workspaces dir and a data dir that only root may enter (issue 12: workspaces were 0755
// under a 0711 dir, so any local account that knew an id could read one). On a btrfs data
// dir it is a subvolume with a qgroup limit, and its state dir (.sandboxd, where
// sandbox-init writes its state and the service, exec and task logs) is a subvolume of its
// own with a limit of its own: a sandbox that fills its quota cannot make sandboxd's
// writes for it fail, and one that fills .sandboxd hurts only its own logs.

// stateDir is the home's directory for what sandbox-init writes (initproto's StateFile,
// ServiceLogDir, ExecLogDir, TaskLogDir all lie in it).
const stateDir = ".sandboxd"

func (m *Manager) workspacesDir() string { return filepath.Join(m.cfg.DataDir, "workspaces") }

func (m *Manager) workspaceDir(id string) string {
	mustValid(id)
	return filepath.Join(m.workspacesDir(), id)
}

// ensureWorkspace creates sb's workspace with workspace/app and the state dir, or repairs
// what is missing of one that exists (an id re-created after delete keeps its content),
// gives it to the sandbox's uid with mode 0700, and applies its disk quota. Pieces inside
// are made through os.Root, so a symlink the sandbox planted cannot send them elsewhere.
// The sandbox is not running.
func (m *Manager) ensureWorkspace(sb store.Sandbox) (created bool, err error) {
	parent := m.workspacesDir()
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return false, internal(err, "create workspaces dir")
	}
	if err := os.Chmod(parent, 0o700); err != nil { // 0711 before issue 12
		return false, internal(err, "workspaces dir mode")
	}
	dir := m.workspaceDir(sb.ID)
	uid := uidOf(sb)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := m.makeWorkspaceDir(parent, sb.ID); err != nil {
			return false, internal(err, "create workspace")
		}
		created = true
	}
	fail := func(err error, what string) (bool, error) {
		if created {
			m.removeWorkspace(sb.ID)
		}
		return false, internal(err, "%s", what)
	}
	if !created {
		// A workspace kept from before (deleted, then created again) may belong to another
		// uid: 1000 before issue 12, or one the range no longer holds.
		if err := m.reownWorkspace(sb.ID, dir, uid); err != nil {
			return fail(err, "give the workspace to its uid")
		}
	}
	if err := os.Lchown(dir, uid, uid); err != nil {
		return fail(err, "chown workspace")
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail(err, "workspace mode")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fail(err, "open workspace")
	}
	defer root.Close()
	for _, p := range []string{"workspace", "workspace/app"} {
		if err := seedDir(root, p, uid, 0o755); err != nil {
			return fail(err, "seed workspace")
		}
	}
	if err := m.ensureStateDir(root, uid); err != nil {
		return fail(err, "create the state dir")
	}
	if err := m.limitWorkspace(sb); err != nil {
		return fail(err, "apply the disk quota")
	}
	return created, nil
}

// makeWorkspaceDir makes the workspace: a subvolume on btrfs, else a directory.
func (m *Manager) makeWorkspaceDir(parent, id string) error {
	if m.disk.kind != EnforcedBtrfs {
		return os.Mkdir(filepath.Join(parent, id), 0o700)
	}
	p, err := os.Open(parent)
	if err != nil {
		return err
	}
	defer p.Close()
	return btrfs.CreateSubvolume(p, id)
}

// seedDir makes p in root (owned by uid) unless something is there already.
func seedDir(root *os.Root, p string, uid int, mode fs.FileMode) error {
	err := root.Mkdir(p, mode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err == nil {
		err = root.Lchown(p, uid, uid)
	}
	if err == nil {
		err = root.Chmod(p, mode) // the mode asked for, whatever the umask took
	}
	return err
}

// ensureStateDir makes the state dir when it is missing: on btrfs, inside a workspace that
// is a subvolume, a subvolume of its own. Whatever the sandbox put there instead (a file, a
// symlink) is left alone: sandbox-init then writes where it can, inside the quota.
func (m *Manager) ensureStateDir(root *os.Root, uid int) error {
	if _, err := root.Lstat(stateDir); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if m.disk.kind == EnforcedBtrfs {
		ws, err := root.Open(".")
		if err != nil {
			return err
		}
		defer ws.Close()
		if btrfs.IsSubvolume(ws) {
			if err := btrfs.CreateSubvolume(ws, stateDir); err != nil {
				return err
			}
			if err := root.Lchown(stateDir, uid, uid); err != nil {
				return err
			}
			return root.Chmod(stateDir, 0o700)
		}
	}
	return seedDir(root, stateDir, uid, 0o700)
}

// removeWorkspace deletes a workspace: its subvolumes with the btrfs call (instant, and it
// frees their qgroups' room), anything else with os.RemoveAll, which unlinks symlinks and
// never follows them (and removes a nested subvolume once it is empty). The sandbox has no
// container any more, so nothing changes the tree meanwhile.
func (m *Manager) removeWorkspace(id string) (existed bool, err error) {
	dir := m.workspaceDir(id)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if m.disk.kind == EnforcedBtrfs {
		m.deleteSubvolumes(id)
	}
	if err := os.RemoveAll(dir); err != nil {
		return true, internal(err, "remove workspace of %s", id)
	}
	return true, nil
}

// deleteSubvolumes deletes the state dir and the workspace when they are subvolumes. The
// delete ioctl takes a name in a directory, and refuses one that is not a subvolume's
// root (a symlink the sandbox left there), so nothing outside is reached. A failure leaves
// the rest to os.RemoveAll.
func (m *Manager) deleteSubvolumes(id string) {
	ws, err := os.Open(m.workspaceDir(id))
	if err != nil {
		return
	}
	defer ws.Close()
	if !btrfs.IsSubvolume(ws) {
		return
	}
	if err := btrfs.DeleteSubvolume(ws, stateDir); err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EINVAL) {
		m.log.Warn("delete state subvolume", "sandbox", id, "err", err)
	}
	parent, err := os.Open(m.workspacesDir())
	if err != nil {
		return
	}
	defer parent.Close()
	if err := btrfs.DeleteSubvolume(parent, id); err != nil {
		m.log.Debug("delete workspace subvolume; removing its files instead", "sandbox", id, "err", err)
	}
}

// WorkspaceExists reports whether id has a workspace on disk (kept after delete).
func (m *Manager) WorkspaceExists(id string) bool {
	if !ValidID(id) {
		return false
	}
	_, err := os.Lstat(m.workspaceDir(id))
	return err == nil
}
