package lifecycle

import (
	"context"

	"github.com/sandboxd/sandboxd/lifecycle/files"
)

// Workspace opens a sandbox's workspace for the files API. It works whether or not the
// sandbox runs and never wakes it. The caller closes it.
func (m *Manager) Workspace(ctx context.Context, id string) (*files.Workspace, error) {
	if !ValidID(id) {
		return nil, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	if _, ok := m.cached(id); !ok {
		return nil, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	ws, err := files.Open(m.workspaceDir(id), sandboxUID, sandboxGID)
	if err != nil {
		return nil, internal(err, "open workspace of %s", id)
	}
	return ws, nil
}
