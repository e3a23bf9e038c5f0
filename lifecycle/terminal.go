package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
)

// TerminalRequest opens an interactive shell on a PTY.
type TerminalRequest struct {
	Cmd        []string // nil: a login shell (bash when the image has it, else sh)
	Env        map[string]string
	Cols, Rows uint // initial size; 0 leaves the engine's default
}

// Terminal is a running PTY session: read its output, write its input. Read and Write may
// be called concurrently with each other and with Resize and Close; Close ends a blocked
// Read.
type Terminal interface {
	io.ReadWriteCloser
	Resize(cols, rows uint) error
	// Wait returns the shell's exit code once it ends. Call it after Read returned an
	// error (the PTY closed), or after Close.
	Wait(ctx context.Context) (int, error)
}

// MaxTerminalSize caps a terminal's columns and rows.
const MaxTerminalSize = 4096

// loginShell runs bash as a login shell when the image has it, else sh.
var loginShell = []string{"/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi"}

// terminalDetachKeys replaces Docker's default detach sequence (ctrl-p ctrl-q) for terminal
// execs. The engine watches stdin for it on every TTY exec and cannot be told not to; with
// the default, ctrl-p (previous history in bash) is held back until the next key and
// ctrl-p ctrl-q ends the session. Nobody types this one.
const terminalDetachKeys = "ctrl-^,ctrl-_,ctrl-^,ctrl-_,ctrl-^"

// Terminal starts a PTY session in a running sandbox: an exec with a TTY, as the sandbox
// user in the home, TERM=xterm-256color. Callers wake the sandbox first.
//
// The exec needs no sandbox-init wrapper: the engine makes a TTY exec the leader of its own
// session and process group, so the pid it reports is what Close kills.
//
// A terminal counts as activity on every read and write (touch), not as work in flight
// (busy): a terminal left open in a forgotten browser tab must not keep the sandbox awake
// forever. A long command in a quiet terminal does not hold the sandbox either; whoever
// needs that uses an exec or a keepalive.
func (m *Manager) Terminal(ctx context.Context, id string, req TerminalRequest) (Terminal, error) {
	cmd := req.Cmd
	if len(cmd) == 0 {
		cmd = loginShell
	}
	if err := validExec(&ExecRequest{Cmd: cmd, Env: req.Env}); err != nil {
		return nil, err
	}
	if req.Cols > MaxTerminalSize || req.Rows > MaxTerminalSize {
		return nil, errorf(CodeInvalid, "terminal size must be at most %d columns and rows", MaxTerminalSize)
	}
	sb, err := m.runningSandbox(id)
	if err != nil {
		return nil, err
	}
	env := append([]string{"TERM=xterm-256color"}, execEnv(req.Env)...)
	opts := container.ExecOptions{
		User: userSpec(sb), Cmd: cmd, Env: env, WorkingDir: Home, Tty: true,
		AttachStdin: true, AttachStdout: true, AttachStderr: true, DetachKeys: terminalDetachKeys,
	}
	var size *[2]uint
	if req.Cols > 0 && req.Rows > 0 {
		size = &[2]uint{req.Rows, req.Cols} // dropped by the client below API 1.42: resized below
		opts.ConsoleSize = size
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dockerTimeout)
	defer cancel()
	execID, err := m.createExec(cctx, id, sb.ContainerID, opts)
	if err != nil {
		return nil, err
	}
	att, err := m.docker.ContainerExecAttach(cctx, execID, container.ExecAttachOptions{Tty: true, ConsoleSize: size})
	if err != nil {
		return nil, internal(err, "start terminal in %s", id)
	}
	t := &terminal{m: m, id: id, execID: execID, att: att}
	m.touch(id)
	if size != nil {
		// A command that has ended already needs no size, and the engine refuses to give
		// it one ("cannot resize a stopped container"): its output and code are still there.
		if err := t.Resize(req.Cols, req.Rows); err != nil && t.running(cctx) {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

// running reports whether the terminal's command still runs; true when the engine cannot
// tell.
func (t *terminal) running(ctx context.Context) bool {
	info, err := t.m.docker.ContainerExecInspect(ctx, t.execID)
	return err != nil || info.Running
}

type terminal struct {
	m      *Manager
	id     string
	execID string
	att    types.HijackedResponse

	closeOnce sync.Once
}

// Read reads the PTY's output (raw bytes: a TTY exec is not multiplexed).
func (t *terminal) Read(p []byte) (int, error) {
	n, err := t.att.Reader.Read(p)
	if n > 0 {
		t.m.touch(t.id)
	}
	return n, err
}

// Write types p into the PTY.
func (t *terminal) Write(p []byte) (int, error) {
	t.m.touch(t.id)
	return t.att.Conn.Write(p)
}

// Resize sets the PTY's size; the shell gets SIGWINCH.
func (t *terminal) Resize(cols, rows uint) error {
	if cols == 0 || rows == 0 || cols > MaxTerminalSize || rows > MaxTerminalSize {
		return errorf(CodeInvalid, "terminal size must be 1 to %d columns and rows", MaxTerminalSize)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	if err := t.m.docker.ContainerExecResize(ctx, t.execID, container.ResizeOptions{Height: rows, Width: cols}); err != nil {
		return internal(err, "resize terminal in %s", t.id)
	}
	return nil
}

// Close hangs the session up and closes the stream. It is safe to call more than once.
func (t *terminal) Close() error {
	t.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
		defer cancel()
		info, err := t.m.docker.ContainerExecInspect(ctx, t.execID)
		if err != nil {
			t.m.log.Warn("inspect terminal to close it", "sandbox", t.id, "err", err)
		} else if info.Running && info.Pid > 1 {
			hangUp(info.Pid, t.m.log, t.id)
		}
		t.att.Close()
	})
	return nil
}

// Wait polls the engine until the shell has ended and returns its exit code (128+signal
// when killed).
func (t *terminal) Wait(ctx context.Context) (int, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, dockerTimeout)
		info, err := t.m.docker.ContainerExecInspect(ictx, t.execID)
		cancel()
		if err != nil {
			return 0, internal(err, "inspect terminal in %s", t.id)
		}
		if !info.Running {
			return info.ExitCode, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// hangUp ends the session that leader leads the way closing a terminal window does, and
// surely: every process of the session gets SIGHUP, as a shell passes a hangup on to its
// jobs (background jobs sit in process groups of their own, where a group kill misses
// them; nohup'd ones survive, as they should), then the shell's own group gets SIGKILL, as
// killExec does, in case the shell ignores the hangup.
func hangUp(leader int, log *slog.Logger, id string) {
	for _, pid := range sessionMembers(leader) {
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil && !errors.Is(err, syscall.ESRCH) {
			log.Warn("hang up terminal", "sandbox", id, "pid", pid, "err", err)
		}
	}
	if err := syscall.Kill(-leader, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		log.Warn("kill terminal", "sandbox", id, "pid", leader, "err", err)
	}
}

// sessionMembers lists the host pids whose session is sid, from /proc (sandboxd shares the
// host's pid namespace, so these are the numbers dockerd reports).
func sessionMembers(sid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []int{sid}
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone already
		}
		// pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 3 && f[3] == strconv.Itoa(sid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
