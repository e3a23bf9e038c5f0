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
	sb, ok := m.cached(id)
	if !ok {
		return nil, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	uid := uidOf(sb)
	ws, err := files.Open(m.workspaceDir(id), uid, uid)
	if err != nil {
		return nil, internal(err, "open workspace of %s", id)
	}
	// Over its quota (as the scan measured it), a sandbox takes no more files; reads and
	// removals go on, as removing files is how it gets below again.
	ws.Full = func() bool { return m.diskOver(id) != "" }
	return ws, nil
}
