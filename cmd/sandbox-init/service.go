package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
)

// Restart backoff: the delay starts at backoffMin and doubles on every quick
// exit up to backoffMax; a process that stayed up backoffReset or longer
// starts over from backoffMin. A service is never given up on: a dev server
// waiting for a file the agent has not written yet must come up once it has.
const (
	backoffMin   = 250 * time.Millisecond
	backoffMax   = 30 * time.Second
	backoffReset = 10 * time.Second
)

// exitLogGrace is how long the "exited" line waits for the rest of the
// process's output to reach the log. The output pipe may stay open past the
// exit (a background child still holds it), so the wait is bounded; it is
// shorter than backoffMin so a restart does not wait on it.
const exitLogGrace = 100 * time.Millisecond

// backoff computes restart delays.
type backoff struct{ cur time.Duration }

// next returns how long to wait before restarting a process that ran for
// uptime (zero for one that failed to start).
func (b *backoff) next(uptime time.Duration) time.Duration {
	switch {
	case b.cur == 0 || uptime >= backoffReset:
		b.cur = backoffMin
	default:
		b.cur = min(2*b.cur, backoffMax)
	}
	return b.cur
}

// service is one supervised program and all the supervisor knows about it.
// Only the supervisor's loop goroutine touches it.
type service struct {
	spec   Spec      // what the current (or next) process runs
	want   *Spec     // what it should run; nil: remove it once stopped
	isMain bool      // the image's command: config changes never touch it
	tee    io.Writer // also gets the output (main's goes to the container log too)
	log    *logFile

	state     string
	inst      *instance // the current or last process; nil before the first start
	attempts  int       // starts tried since the spec last changed
	startedAt time.Time
	lastExit  *initproto.Exit
	err       string // why the last start failed
	backoff   backoff

	stopping bool // stop requested: no restart when the process exits
	killed   bool // its group got SIGKILL: do not wait for it to empty
	gen      int  // bumped whenever a pending timer of this service goes stale
}

// reset makes svc a new incarnation running spec.
func (svc *service) reset(spec Spec) {
	svc.spec = spec
	svc.attempts = 0
	svc.lastExit = nil
	svc.err = ""
	svc.backoff = backoff{}
}

// instance is one process of a service. Its pid is also its process group.
type instance struct {
	pid       int
	alive     bool          // not reaped yet
	leftovers bool          // members of its group were still there when it exited
	drained   chan struct{} // closed when its output pipe reaches EOF
	logged    chan struct{} // closed once its "exited" line is in the log
}

// resolve returns the path to execute for spec and checks its directory, so
// a missing cwd or command is reported in words rather than as an errno.
func resolve(spec Spec, env []string, dir string) (string, error) {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("cwd %s: no such directory", dir)
	}
	pathEnv, _ := lookupEnv(env, "PATH")
	path, err := lookPath(spec.Cmd[0], pathEnv, dir)
	switch {
	case os.IsNotExist(err):
		return "", fmt.Errorf("exec %q: not found", spec.Cmd[0])
	case os.IsPermission(err):
		return "", fmt.Errorf("exec %q: permission denied", spec.Cmd[0])
	case err != nil:
		return "", fmt.Errorf("exec %q: %w", spec.Cmd[0], err)
	}
	return path, nil
}

// spawn starts argv as the leader of a new process group, with stdin from
// stdin (nil: closed) and stdout and stderr into a new pipe, and returns its
// pid and the pipe's read end. It does not wait for the process: reapAll
// does.
func spawn(path string, argv, env []string, dir string, stdin *os.File) (int, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, fmt.Errorf("output pipe: %w", err)
	}
	in := ^uintptr(0) // ForkExec closes the descriptor
	if stdin != nil {
		in = stdin.Fd()
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{in, w.Fd(), w.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	w.Close()
	if err != nil {
		r.Close()
		return 0, nil, fmt.Errorf("exec %q: %w", argv[0], err)
	}
	return pid, r, nil
}

// copyOutput copies a process's output from r to its log (and tee) until
// every holder of the pipe's write end has closed it, then closes drained.
// It keeps reading when the log cannot be written, so the process never
// blocks on a full pipe.
func copyOutput(r *os.File, log *logFile, tee io.Writer, drained chan<- struct{}) {
	defer close(drained)
	defer r.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			log.Write(buf[:n]) // errors are reported by the log itself
			if tee != nil {
				tee.Write(buf[:n])
			}
		}
		if err != nil {
			return
		}
	}
}
