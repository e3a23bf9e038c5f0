package lifecycle

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Owner of everything in a workspace: the sandbox user.
const sandboxUID, sandboxGID = 1000, 1000

func (m *Manager) workspaceDir(id string) string {
	mustValid(id)
	return filepath.Join(m.cfg.DataDir, "workspaces", id)
}

// ensureWorkspace creates <data>/workspaces/<id> with workspace/app, owned by 1000:1000. A
// workspace that exists (an id reused after delete) keeps its content; missing pieces are
// added through os.Root, so a symlink the sandbox planted cannot send them elsewhere.
func (m *Manager) ensureWorkspace(id string) (created bool, err error) {
	dir := m.workspaceDir(id)
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return false, internal(err, "create workspaces dir")
	}
	switch err := os.Mkdir(dir, 0o755); {
	case err == nil:
		created = true
		if err := os.Lchown(dir, sandboxUID, sandboxGID); err != nil {
			os.Remove(dir)
			return false, internal(err, "chown workspace")
		}
	case !errors.Is(err, fs.ErrExist):
		return false, internal(err, "create workspace")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return created, internal(err, "open workspace")
	}
	defer root.Close()
	for _, p := range []string{"workspace", "workspace/app"} {
		err := root.Mkdir(p, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err == nil {
			err = root.Lchown(p, sandboxUID, sandboxGID)
		}
		if err != nil {
			return created, internal(err, "seed workspace")
		}
	}
	return created, nil
}

// removeWorkspace deletes a workspace. os.RemoveAll unlinks symlinks and never follows them.
func (m *Manager) removeWorkspace(id string) (existed bool, err error) {
	dir := m.workspaceDir(id)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return true, internal(err, "remove workspace of %s", id)
	}
	return true, nil
}

// WorkspaceExists reports whether id has a workspace on disk (kept after delete).
func (m *Manager) WorkspaceExists(id string) bool {
	if !ValidID(id) {
		return false
	}
	_, err := os.Lstat(m.workspaceDir(id))
	return err == nil
}
