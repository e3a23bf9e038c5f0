package lifecycle

import (
	"context"
	"io"
)

// TerminalRequest opens an interactive shell on a PTY.
type TerminalRequest struct {
	Cmd        []string // nil: a login shell (bash when the image has it, else sh)
	Env        map[string]string
	Cols, Rows uint
}

// Terminal is a running PTY session: read its output, write its input.
type Terminal interface {
	io.ReadWriteCloser
	Resize(cols, rows uint) error
	// Wait returns the shell's exit code once it ends.
	Wait(ctx context.Context) (int, error)
}

// Terminal starts a PTY session in a running sandbox.
func (m *Manager) Terminal(ctx context.Context, id string, req TerminalRequest) (Terminal, error) {
	return nil, errorf(CodeInternal, "not implemented")
}
