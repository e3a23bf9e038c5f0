package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path"
	"sort"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/internal/timespan"
)

// ExecRequest is a command to run in a sandbox as the sandbox user.
type ExecRequest struct {
	Cmd     []string
	Env     map[string]string
	Cwd     string        // relative to the home, or absolute; "" is the home
	Timeout time.Duration // 0: DefaultExecTimeout
	Stdin   io.Reader     // nil: no stdin
}

// ExecStatus is how a command ended.
type ExecStatus struct {
	ExitCode int
	TimedOut bool // killed because Timeout passed
}

// Exec limits.
const (
	DefaultExecTimeout = 10 * time.Minute
	MaxExecTimeout     = 24 * time.Hour
	killWait           = 5 * time.Second
)

func validExec(req *ExecRequest) error {
	if err := checkArgv("cmd", req.Cmd); err != nil {
		return err
	}
	if err := validEnv(req.Env); err != nil {
		return err
	}
	if err := checkCwd("cwd", req.Cwd); err != nil {
		return err
	}
	switch {
	case req.Timeout < 0 || req.Timeout > MaxExecTimeout:
		return errorf(CodeInvalid, "timeout must be between 0 and %s", timespan.Format(MaxExecTimeout))
	case req.Timeout == 0:
		req.Timeout = DefaultExecTimeout
	}
	return nil
}

// ExecStream runs req in a running sandbox, streaming its stdout and stderr as they are
// produced. The command is killed, its whole process group, when Timeout passes or ctx ends
// (a client that disconnects). A sandbox that is not running is a conflict: callers wake it
// first, so an exit code is never made up.
func (m *Manager) ExecStream(ctx context.Context, id string, req ExecRequest, stdout, stderr io.Writer) (ExecStatus, error) {
	if err := validExec(&req); err != nil {
		return ExecStatus{}, err
	}
	sb, err := m.runningSandbox(id)
	if err != nil {
		return ExecStatus{}, err
	}
	done := m.busy(id)
	defer done()

	cmd := req.Cmd
	if m.cfg.InitPath != "" {
		// sandbox-init makes the command a process-group leader, so a kill reaches its children.
		cmd = initproto.ExecCommand("", cmd...)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dockerTimeout)
	defer cancel()
	execID, err := m.createExec(cctx, id, sb.ContainerID, container.ExecOptions{
		User: userSpec(sb), Cmd: cmd, Env: execEnv(req.Env), WorkingDir: execCwd(req.Cwd),
		AttachStdin: req.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return ExecStatus{}, err
	}
	att, err := m.docker.ContainerExecAttach(cctx, execID, container.ExecAttachOptions{})
	if err != nil {
		return ExecStatus{}, internal(err, "start exec in %s", id)
	}

	if req.Stdin != nil {
		go func() {
			io.Copy(att.Conn, req.Stdin)
			att.CloseWrite()
		}()
	}
	// stdcopy writes both streams from this one goroutine, so stdout and stderr are never
	// written at the same time. It ends before ExecStream returns (the deferred close below
	// unblocks its read): a caller's writer, an HTTP response say, must never be written to
	// after the call. A writer that blocks forever would hold the return; streaming callers
	// bound their writes with a deadline.
	guard := &cwdGuard{w: stdout}
	copied := make(chan struct{})
	var copyErr error
	go func() {
		defer close(copied)
		_, copyErr = stdcopy.StdCopy(guard, stderr, att.Reader)
	}()
	defer func() {
		att.Close()
		<-copied
	}()

	timer := time.NewTimer(req.Timeout)
	defer timer.Stop()
	var st ExecStatus
	select {
	case <-copied:
		err = copyErr
		if err != nil {
			// A writer failed (the client went away) or the stream broke: nobody will read
			// what the command says any more, so it must not run on unseen.
			if kerr := m.killExec(id, execID, copied); kerr != nil {
				err = errors.Join(err, kerr)
			}
			return st, internal(err, "stream exec output in %s", id)
		}
	case <-timer.C:
		st.TimedOut = true
		err = m.killExec(id, execID, copied)
	case <-ctx.Done():
		err = m.killExec(id, execID, copied)
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		return st, err
	}
	ictx, icancel := context.WithTimeout(context.WithoutCancel(ctx), dockerTimeout)
	defer icancel()
	info, err := m.docker.ContainerExecInspect(ictx, execID)
	if err != nil {
		return st, internal(err, "inspect exec in %s", id)
	}
	st.ExitCode = info.ExitCode
	if err := guard.refusal(req.Cwd, st.ExitCode); err != nil {
		return ExecStatus{}, err
	}
	if err := guard.flush(); err != nil {
		return st, internal(err, "stream exec output in %s", id)
	}
	return st, nil
}

// execEnv is env as Docker takes it, sorted so the order is stable.
func execEnv(vars map[string]string) []string {
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// execCwd resolves a request's cwd: relative to the home, or absolute; "" is the home.
func execCwd(cwd string) string {
	switch {
	case cwd == "":
		return Home
	case path.IsAbs(cwd):
		return path.Clean(cwd)
	}
	return path.Join(Home, cwd)
}

// killExec kills an exec's process group by its host pid (sandboxd runs in the host's pid
// namespace, beside dockerd; the Engine API has no exec kill) and waits for its output to
// end (copied closes). The pid is read again on each try: an exec that has only just
// started may not report one yet, even once it has written output.
func (m *Manager) killExec(id, execID string, copied <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	deadline := time.Now().Add(killWait)
	for {
		info, err := m.docker.ContainerExecInspect(ctx, execID)
		if err != nil {
			return internal(err, "inspect exec to kill it")
		}
		if !info.Running {
			return nil
		}
		if info.Pid > 0 {
			killGroup(info.Pid, syscall.SIGKILL, m.log, id)
			select {
			case <-copied:
				return nil
			case <-time.After(250 * time.Millisecond):
			}
		} else {
			// The engine records the pid only after the process has started, and its output
			// may arrive (or its reader fail) before that: no pid is no kill yet, whatever
			// the output did.
			time.Sleep(20 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			m.log.Warn("exec still running after kill", "sandbox", id, "pid", info.Pid)
			return nil
		}
	}
}

// killGroup sends sig to the process group that pid leads, or to pid alone when it leads
// none (no sandbox-init wrapper).
func killGroup(pid int, sig syscall.Signal, log *slog.Logger, id string) {
	if pid <= 1 {
		return // never the whole host, never init
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			log.Warn("kill exec", "sandbox", id, "pid", pid, "err", err)
		}
	}
}

// ExecResult is the buffered outcome of Exec.
type ExecResult struct {
	ExecStatus
	Stdout    []byte
	Stderr    []byte
	Truncated bool // output beyond MaxExecOutput per stream was dropped
}

// MaxExecOutput caps each stream Exec buffers.
const MaxExecOutput = 8 << 20

// Exec runs req and returns its output once it ends.
func (m *Manager) Exec(ctx context.Context, id string, req ExecRequest) (ExecResult, error) {
	var out, errOut cappedBuffer
	st, err := m.ExecStream(ctx, id, req, &out, &errOut)
	return ExecResult{ExecStatus: st, Stdout: out.b, Stderr: errOut.b, Truncated: out.over || errOut.over}, err
}

type cappedBuffer struct {
	b    []byte
	over bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	room := MaxExecOutput - len(c.b)
	if len(p) > room {
		c.b = append(c.b, p[:max(room, 0)]...)
		c.over = true
		return len(p), nil
	}
	c.b = append(c.b, p...)
	return len(p), nil
}
