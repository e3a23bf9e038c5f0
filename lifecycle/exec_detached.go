package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"github.com/oklog/ulid/v2"
	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/store"
)

// A detached exec runs as "sandbox-init exec --log FILE -- argv" through the Engine API with
// Detach: sandbox-init appends the command's output to FILE and writes its exit code to
// FILE.exit, both in the workspace, so status and output outlive the call, the exec's
// docker record and sandboxd itself. Memory only adds what the files cannot say: the docker
// exec behind an id (to tell running from gone) and the argv.

// DetachedExec is a command started with Detach: it runs on after the call returns; its
// output and exit code are read later.
type DetachedExec struct {
	ID        string
	Cmd       []string // nil when sandboxd no longer remembers it (after a restart)
	Status    string   // running, exited, unknown
	ExitCode  *int     // set when exited and the code is known
	TimedOut  bool     // killed because its Timeout passed
	StartedAt time.Time
}

// Statuses of a detached exec.
const (
	DetachedRunning = "running"
	DetachedExited  = "exited"
	// DetachedUnknown is an exec whose log exists but that sandboxd did not start in this
	// run (it restarted since): the command may still run; its exit file will tell.
	DetachedUnknown = "unknown"
)

// MaxDetachedOutput is the most output a detached exec's log keeps: sandbox-init writes
// the first this many bytes to the workspace and one line saying the rest was dropped
// (issue 11). The head is kept, not the tail: the file only grows, so a reader following
// it with Range requests never sees it shift under its offsets, and the exit file still
// says how the command ended. A command whose end matters pipes through tail itself.
const MaxDetachedOutput = 32 << 20

// maxDetachedKept bounds the finished execs remembered per Manager; running ones are always
// kept (the sandbox's pids limit bounds them).
const maxDetachedKept = 1000

// ulidPattern matches the ids sandboxd makes for detached execs and tasks: lowercase ULIDs,
// checked before they reach a path.
var ulidPattern = regexp.MustCompile(`^[0-9a-z]{26}$`)

// ExecDetached starts req and returns at once. It needs a running sandbox (callers wake it)
// and sandbox-init, which keeps the output and exit code. Stdin is refused. Timeout, when
// given, kills the command's process group once it passes; without one the command runs
// until it ends or the sandbox stops.
//
// While the command runs it is work in flight (busy): the idle reaper leaves the sandbox
// alone, as for any exec. A watcher goroutine per exec polls the engine and releases it;
// its life is bounded by the exec's and by the container's (see watchDetached).
func (m *Manager) ExecDetached(ctx context.Context, id string, req ExecRequest) (DetachedExec, error) {
	timeout := req.Timeout // validExec turns 0 into the buffered default; detached keeps 0
	if err := validExec(&req); err != nil {
		return DetachedExec{}, err
	}
	if req.Stdin != nil {
		return DetachedExec{}, errorf(CodeInvalid, "a detached exec takes no stdin")
	}
	if m.cfg.InitPath == "" {
		return DetachedExec{}, errorf(CodeInvalid, "detach needs sandbox-init (SANDBOXD_INIT_PATH)")
	}
	sb, err := m.runningSandbox(id)
	if err != nil {
		return DetachedExec{}, err
	}
	execID := strings.ToLower(ulid.Make().String())
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dockerTimeout)
	defer cancel()
	env := maps.Clone(req.Env)
	if env == nil {
		env = map[string]string{}
	}
	env[initproto.LogMaxEnv] = strconv.Itoa(MaxDetachedOutput) // sandbox-init keeps no more
	created, err := m.createLoggedExec(cctx, sb, path.Join(Home, detachedLog(execID)), req.Cmd, env, execCwd(req.Cwd))
	if err != nil {
		return DetachedExec{}, err
	}
	started := m.now().UTC()
	e := &detachedEntry{sandbox: id, container: sb.ContainerID, dockerID: created,
		cmd: append([]string(nil), req.Cmd...), started: started, done: make(chan struct{})}
	set := m.detached()
	// Busy before the start: the reaper must not find the sandbox idle in between.
	release := m.busy(id)
	if err := m.docker.ContainerExecStart(cctx, created, container.ExecStartOptions{Detach: true}); err != nil {
		release()
		if cerr := cwdError(err.Error(), req.Cwd); cerr != nil {
			return DetachedExec{}, cerr
		}
		return DetachedExec{}, internal(err, "start exec in %s", id)
	}
	set.add(execID, e)
	set.wg.Add(1)
	go func() {
		defer set.wg.Done()
		defer release()
		m.watchDetached(e, timeout)
	}()
	return DetachedExec{ID: execID, Cmd: e.cmd, Status: DetachedRunning, StartedAt: started}, nil
}

// alive reports a state in which the container's processes exist: running, or paused
// (frozen; an exec in it goes on once thawed).
func alive(status string) bool {
	return status == store.StatusRunning || status == store.StatusPaused
}

// Watcher cadence: the first poll after detachedPoll, then backing off to detachedPollMax,
// so a long build costs a few engine calls a minute.
const (
	detachedPoll      = time.Second
	detachedPollMax   = 10 * time.Second
	detachedMaxErrors = 5 // consecutive failed inspects before the watcher gives up
)

// watchDetached polls the engine until e's exec ends, then records how, and returns; the
// caller releases busy. It also returns, without an exit code, once the sandbox is no
// longer running on the container the exec started in (stopped, deleted, replaced: the
// exec died with it), when the engine forgets the exec, or after detachedMaxErrors failed
// inspects in a row. So it cannot outlive the exec or the container, and an engine that
// stops answering costs a few minutes of busy at most. A Timeout is enforced here, by
// killing the process group.
//
// Polling, rather than waiting for exec_die on a Docker events subscription: an event
// missed while the subscription reconnects would pin the sandbox for good, the events loop
// (events.go) would have to share state with this file, and one inspect every few seconds
// per detached exec is nothing to the engine.
func (m *Manager) watchDetached(e *detachedEntry, timeout time.Duration) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	wait, fails := detachedPoll, 0
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if !deadline.IsZero() {
			if left := time.Until(deadline); left > 0 && left < wait {
				wait = left
			}
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-e.done: // finished by someone else (DetachedStatus saw it end)
			return
		case <-m.base.Done(): // sandboxd stops; the exec goes on and its exit file tells the rest
			return
		}
		if sb, ok := m.cached(e.sandbox); !ok || !alive(sb.Status) || sb.ContainerID != e.container {
			e.finish(nil)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
		info, err := m.docker.ContainerExecInspect(ctx, e.dockerID)
		cancel()
		switch {
		case errdefs.IsNotFound(err):
			e.finish(nil)
			return
		case err != nil:
			if fails++; fails >= detachedMaxErrors {
				m.log.Warn("detached exec: giving up watching", "sandbox", e.sandbox, "err", err)
				e.finish(nil)
				return
			}
		case !info.Running:
			code := info.ExitCode
			e.finish(&code)
			return
		case !deadline.IsZero() && !time.Now().Before(deadline):
			if info.Pid > 1 { // no pid yet: try again at the next poll
				e.setTimedOut() // first: a status read may see it gone before the kill returns
				killGroup(info.Pid, syscall.SIGKILL, m.log, e.sandbox)
				deadline = time.Time{} // the next polls see it gone
			}
			wait = detachedPoll
			continue
		default:
			fails = 0
		}
		wait = min(wait*3/2, detachedPollMax)
	}
}

// DetachedStatus reports a detached exec. It works while the sandbox sleeps: the exit file
// is in the workspace.
func (m *Manager) DetachedStatus(ctx context.Context, id, execID string) (DetachedExec, error) {
	root, e, err := m.openDetached(id, execID)
	if err != nil {
		return DetachedExec{}, err
	}
	defer root.Close()
	d := DetachedExec{ID: execID, StartedAt: execIDTime(execID)}
	if e != nil {
		d.Cmd, d.StartedAt = e.cmd, e.started
	}
	finishedWith := func(code *int, timedOut bool) (DetachedExec, error) {
		d.Status, d.ExitCode, d.TimedOut = DetachedExited, code, timedOut
		return d, nil
	}
	code, ok, err := readExitFile(root, detachedLog(execID))
	if err != nil {
		return d, err
	}
	if ok {
		var timedOut bool
		if e != nil {
			e.finish(&code)
			_, timedOut = e.result()
		}
		return finishedWith(&code, timedOut)
	}
	if e != nil {
		if select1(e.done) {
			return finishedWith(e.result())
		}
	}
	_, logErr := root.Lstat(detachedLog(execID))
	if e == nil && logErr != nil {
		return d, errorf(CodeNotFound, "exec %s not found in sandbox %s", execID, id)
	}
	if sb, _ := m.cached(id); !alive(sb.Status) || (e != nil && sb.ContainerID != e.container) {
		// Its container is gone or stopped, and every process with it; it left no exit file.
		return finishedWith(nil, e != nil && e.timedOutNow())
	}
	if e == nil {
		d.Status = DetachedUnknown
		return d, nil
	}
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerExecInspect(cctx, e.dockerID)
	switch {
	case errdefs.IsNotFound(err):
		d.Status = DetachedUnknown
		return d, nil
	case err != nil:
		return d, internal(err, "inspect exec %s", execID)
	case info.Running:
		d.Status = DetachedRunning
		return d, nil
	}
	// Ended between the exit-file read and the inspect, or killed before sandbox-init
	// could write the file: the file wins when it is there now.
	if code, ok, err := readExitFile(root, detachedLog(execID)); err == nil && ok {
		e.finish(&code)
	} else {
		code := info.ExitCode
		e.finish(&code)
	}
	return finishedWith(e.result())
}

// DetachedOutput opens a detached exec's combined output for reading (Range-capable). An
// exec that has not written its log yet reads as empty.
func (m *Manager) DetachedOutput(ctx context.Context, id, execID string) (io.ReadSeekCloser, time.Time, error) {
	root, e, err := m.openDetached(id, execID)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer root.Close() // an open file outlives its root
	f, st, err := openRegular(root, detachedLog(execID))
	switch {
	case errors.Is(err, fs.ErrNotExist) && e != nil:
		return nopSeekCloser{bytes.NewReader(nil)}, e.started, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, time.Time{}, errorf(CodeNotFound, "exec %s not found in sandbox %s", execID, id)
	case err != nil:
		return nil, time.Time{}, err
	}
	return f, st.ModTime(), nil
}

// openDetached validates ids and opens the sandbox's workspace as an os.Root: the workspace
// belongs to the sandbox user, who can plant symlinks and FIFOs there, so every path under
// it is resolved by os.Root and never escapes it.
func (m *Manager) openDetached(id, execID string) (*os.Root, *detachedEntry, error) {
	if !ValidID(id) {
		return nil, nil, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	if _, ok := m.cached(id); !ok {
		return nil, nil, errorf(CodeNotFound, "sandbox %s not found", id)
	}
	if !ulidPattern.MatchString(execID) {
		return nil, nil, errorf(CodeNotFound, "exec %q not found", execID)
	}
	e := m.detached().get(execID)
	if e != nil && e.sandbox != id {
		return nil, nil, errorf(CodeNotFound, "exec %s not found in sandbox %s", execID, id)
	}
	root, err := os.OpenRoot(m.workspaceDir(id))
	if err != nil {
		return nil, nil, internal(err, "open workspace of %s", id)
	}
	return root, e, nil
}

func detachedLog(execID string) string { return initproto.ExecLog(execID) }

// readExitFile reads the exit code sandbox-init's `exec --log logFile` wrote to its exit
// file. ok is false while there is none.
func readExitFile(root *os.Root, logFile string) (code int, ok bool, err error) {
	name := initproto.ExitFile(logFile)
	f, _, err := openRegular(root, name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, initproto.MaxExitSize))
	if err != nil {
		return 0, false, internal(err, "read %s", name)
	}
	code, err = initproto.ParseExitCode(b)
	if err != nil {
		return 0, false, internal(err, "read %s", name)
	}
	return code, true, nil
}

// openRegular opens name under root for reading and refuses anything but a regular file.
// O_NONBLOCK keeps a FIFO planted in its place from blocking the open.
func openRegular(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, errorf(CodeNotFound, "%s: cannot be read: %v", name, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, errorf(CodeNotFound, "%s is not a regular file", name)
	}
	return f, st, nil
}

// execIDTime is the time an exec id was made (ULIDs carry it), for execs sandboxd does not
// remember.
func execIDTime(execID string) time.Time {
	u, err := ulid.ParseStrict(execID)
	if err != nil {
		return time.Time{}
	}
	return ulid.Time(u.Time()).UTC()
}

type nopSeekCloser struct{ io.ReadSeeker }

func (nopSeekCloser) Close() error { return nil }

func select1(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// detachedEntry is what sandboxd remembers of one detached exec.
type detachedEntry struct {
	sandbox, container, dockerID string
	cmd                          []string
	started                      time.Time

	mu       sync.Mutex
	done     chan struct{} // closed by finish
	exitCode *int
	timedOut bool
}

// finish records how the exec ended (a timeout is recorded by setTimedOut); the first call
// wins.
func (e *detachedEntry) finish(code *int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if select1(e.done) {
		return
	}
	e.exitCode = code
	close(e.done)
}

func (e *detachedEntry) setTimedOut() {
	e.mu.Lock()
	e.timedOut = true
	e.mu.Unlock()
}

func (e *detachedEntry) timedOutNow() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.timedOut
}

func (e *detachedEntry) result() (*int, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.exitCode, e.timedOut
}

// detachedSet is one Manager's detached execs by id, and its watchers.
type detachedSet struct {
	mu    sync.Mutex
	byID  map[string]*detachedEntry
	order []string // ids, oldest first, for eviction
	wg    sync.WaitGroup
}

func (s *detachedSet) add(id string, e *detachedEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[id] = e
	s.order = append(s.order, id)
	if len(s.order) <= maxDetachedKept {
		return
	}
	// Drop the oldest finished entries beyond the bound; a dropped id still answers from
	// its exit file, only its argv is forgotten.
	excess := len(s.order) - maxDetachedKept
	kept := s.order[:0]
	for _, id := range s.order {
		if excess > 0 && select1(s.byID[id].done) {
			delete(s.byID, id)
			excess--
			continue
		}
		kept = append(kept, id)
	}
	clear(s.order[len(kept):])
	s.order = kept
}

func (s *detachedSet) get(id string) *detachedEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[id]
}

func (m *Manager) detached() *detachedSet { return &m.detachedExecs }

// waitDetached waits for every detached-exec watcher of m to return (tests).
func (m *Manager) waitDetached() { m.detached().wg.Wait() }
