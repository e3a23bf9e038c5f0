package lifecycle

import (
	"context"
	"io"
	"time"
)

// DetachedExec is a command started with Detach: it runs on after the call returns; its
// output and exit code are read later.
type DetachedExec struct {
	ID        string
	Cmd       []string
	Status    string // running, exited, unknown
	ExitCode  *int
	StartedAt time.Time
}

// ExecDetached starts req and returns at once.
func (m *Manager) ExecDetached(ctx context.Context, id string, req ExecRequest) (DetachedExec, error) {
	return DetachedExec{}, errorf(CodeInternal, "not implemented")
}

// DetachedStatus reports a detached exec.
func (m *Manager) DetachedStatus(ctx context.Context, id, execID string) (DetachedExec, error) {
	return DetachedExec{}, errorf(CodeInternal, "not implemented")
}

// DetachedOutput opens a detached exec's combined output for reading (Range-capable).
func (m *Manager) DetachedOutput(ctx context.Context, id, execID string) (io.ReadSeekCloser, time.Time, error) {
	return nil, time.Time{}, errorf(CodeInternal, "not implemented")
}
