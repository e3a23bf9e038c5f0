package lifecycle

import (
	"bytes"
	"io"
	"strings"
)

// A cwd the runtime cannot enter fails the exec before any process runs, and Docker says so
// in the exec's stdout, as runc put it, with exit code 126:
//
//	OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd
//	("/home/sandbox/nodir") set in config.json failed: no such file or directory: unknown
//
// That is the caller's mistake, not the command's output: cwdGuard holds the first output
// back while it may be that refusal, and ExecStream answers it as CodeInvalid in plain
// words with nothing written. A detached exec's start gets the same words from the engine
// as an error, and ExecDetached answers them the same way. Checking the cwd first would
// cost every exec a second one.

const runcRefusal = "OCI runtime exec failed: "

// cwdGuard passes output to w, except a first write that is the runtime's refusal to enter
// the cwd, which it holds.
type cwdGuard struct {
	w       io.Writer
	started bool
	held    []byte
}

func (g *cwdGuard) Write(p []byte) (int, error) {
	if !g.started {
		g.started = true
		if bytes.HasPrefix(p, []byte(runcRefusal)) && bytes.Contains(p, []byte("chdir to cwd")) {
			g.held = append([]byte(nil), p...)
			return len(p), nil
		}
	}
	if err := g.flush(); err != nil {
		return 0, err
	}
	return g.w.Write(p)
}

// flush writes what was held: it was a program's own words after all.
func (g *cwdGuard) flush() error {
	if g.held == nil {
		return nil
	}
	held := g.held
	g.held = nil
	_, err := g.w.Write(held)
	return err
}

// refusal is the cwd's error when the runtime refused it: its words held, and the exec
// ended with 126. Otherwise nil, and flush writes what was held (a program's own words).
func (g *cwdGuard) refusal(cwd string, code int) error {
	if g.held == nil || code != 126 {
		return nil
	}
	return cwdError(string(g.held), cwd)
}

// cwdError is the caller's error for msg when it is the runtime's refusal to enter cwd
// (in the output of an attached exec, in the engine's answer to a detached one's start),
// else nil.
func cwdError(msg, cwd string) error {
	if !strings.Contains(msg, `chdir to cwd ("`+execCwd(cwd)+`") set in config.json failed: `) {
		return nil
	}
	reason := "cannot be entered"
	switch {
	case strings.Contains(msg, "no such file or directory"):
		reason = "does not exist in the sandbox"
	case strings.Contains(msg, "not a directory"):
		reason = "is not a directory"
	}
	return errorf(CodeInvalid, "cwd %q (%s) %s", cwd, execCwd(cwd), reason)
}
