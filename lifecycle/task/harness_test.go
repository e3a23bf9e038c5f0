package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/agent"
	"github.com/sandboxd/sandboxd/lifecycle/snapshot"
	"github.com/sandboxd/sandboxd/store"
)

// fakeSandboxes is the lifecycle manager as the runner sees it; each method calls its field.
type fakeSandboxes struct {
	runningSandbox  func(id string) (store.Sandbox, error)
	workspaceDir    func(id string) string
	busy            func(id string) func()
	canRunAgent     func(ctx context.Context, sb store.Sandbox, ad agent.Adapter) error
	startLoggedExec func(ctx context.Context, sb store.Sandbox, logFile string, argv []string, env map[string]string, cwd string) (string, error)
	signalExec      func(sandboxID, execID string, sig syscall.Signal)
	execExited      func(ctx context.Context, execID string) (int, bool)
	checkpoint      func(ctx context.Context, id, taskID string) (string, error)
	checkpointDir   func(ctx context.Context, id, taskID string) (string, bool)
	dropCheckpoint  func(ctx context.Context, id, taskID string)
}

func (f *fakeSandboxes) RunningSandbox(id string) (store.Sandbox, error) { return f.runningSandbox(id) }
func (f *fakeSandboxes) WorkspaceDir(id string) string                   { return f.workspaceDir(id) }
func (f *fakeSandboxes) Busy(id string) func()                           { return f.busy(id) }
func (f *fakeSandboxes) CanRunAgent(ctx context.Context, sb store.Sandbox, ad agent.Adapter) error {
	return f.canRunAgent(ctx, sb, ad)
}
func (f *fakeSandboxes) StartLoggedExec(ctx context.Context, sb store.Sandbox, logFile string, argv []string, env map[string]string, cwd string) (string, error) {
	return f.startLoggedExec(ctx, sb, logFile, argv, env, cwd)
}
func (f *fakeSandboxes) SignalExec(sandboxID, execID string, sig syscall.Signal) {
	f.signalExec(sandboxID, execID, sig)
}
func (f *fakeSandboxes) ExecExited(ctx context.Context, execID string) (int, bool) {
	return f.execExited(ctx, execID)
}

func (f *fakeSandboxes) Checkpoint(ctx context.Context, id, taskID string) (string, error) {
	return f.checkpoint(ctx, id, taskID)
}
func (f *fakeSandboxes) CheckpointDir(ctx context.Context, id, taskID string) (string, bool) {
	return f.checkpointDir(ctx, id, taskID)
}
func (f *fakeSandboxes) DropCheckpoint(ctx context.Context, id, taskID string) {
	f.dropCheckpoint(ctx, id, taskID)
}

var _ Sandboxes = (*fakeSandboxes)(nil)

// faultyStore is the real store with a switch that makes AppendTaskEvents fail, as a full
// disk or a locked database would.
type faultyStore struct {
	*store.DB
	failAppend atomic.Bool
}

func (s *faultyStore) AppendTaskEvents(ctx context.Context, taskID string, events []store.TaskEvent, logOffset int64) ([]store.TaskEvent, error) {
	if s.failAppend.Load() {
		return nil, errors.New("injected: disk I/O error")
	}
	return s.DB.AppendTaskEvents(ctx, taskID, events, logOffset)
}

// harness is a runner over one running sandbox "sb" whose workspace is a temporary dir, a
// real SQLite file behind faultyStore, and an agent the test plays by writing its log.
type harness struct {
	t     *testing.T
	ws    string // the sandbox's workspace (its home)
	data  string
	db    *faultyStore
	fake  *fakeSandboxes
	r     *Runner
	ctx   context.Context
	inUse atomic.Int32 // Busy marks not yet released
	died  atomic.Bool  // the agent's exec ended without an exit file

	mu      sync.Mutex
	stopped bool             // the sandbox stopped
	signals []syscall.Signal // sent to the agent
	ended   []string         // statuses told to Runner.Ended
	last    string           // the task started last
}

// newHarness opens the store and the runner; the caller defers close. Inside a synctest
// bubble both are made and closed there, so no goroutine outlives it.
func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, ws: t.TempDir(), data: t.TempDir(), ctx: context.Background()}
	if err := os.MkdirAll(filepath.Join(h.ws, "workspace", "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(h.ctx, filepath.Join(h.data, "sandboxd.db"))
	if err != nil {
		t.Fatal(err)
	}
	h.db = &faultyStore{DB: db}
	h.fake = &fakeSandboxes{
		runningSandbox: func(id string) (store.Sandbox, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if id != "sb" {
				return store.Sandbox{}, &lifecycle.Error{Code: lifecycle.CodeNotFound, Message: "sandbox " + id + " not found"}
			}
			if h.stopped {
				return store.Sandbox{}, &lifecycle.Error{Code: lifecycle.CodeConflict, Message: "sandbox sb is stopped, not running"}
			}
			return store.Sandbox{ID: "sb", Status: store.StatusRunning, ContainerID: "c0ffee", Image: "testkit"}, nil
		},
		workspaceDir: func(string) string { return h.ws },
		busy: func(string) func() {
			h.inUse.Add(1)
			var once sync.Once
			return func() { once.Do(func() { h.inUse.Add(-1) }) }
		},
		canRunAgent: func(context.Context, store.Sandbox, agent.Adapter) error { return nil },
		startLoggedExec: func(context.Context, store.Sandbox, string, []string, map[string]string, string) (string, error) {
			return "exec-1", nil
		},
		signalExec: func(_, _ string, sig syscall.Signal) {
			h.mu.Lock()
			h.signals = append(h.signals, sig)
			h.mu.Unlock()
		},
		execExited: func(context.Context, string) (int, bool) { return 0, false },
		// Checkpoints are real copies of the workspace, as the manager's are (less the
		// freeze), under the data dir.
		checkpoint: func(ctx context.Context, _, taskID string) (string, error) {
			dst := h.checkpointPath(taskID)
			os.MkdirAll(filepath.Dir(dst), 0o700)
			_, err := snapshot.Copy(ctx, h.ws, dst, snapshot.Options{Exclude: []string{".sandboxd"}})
			return dst, err
		},
		checkpointDir: func(_ context.Context, _, taskID string) (string, bool) {
			_, err := os.Stat(h.checkpointPath(taskID))
			return h.checkpointPath(taskID), err == nil
		},
		dropCheckpoint: func(_ context.Context, _, taskID string) { snapshot.Remove(h.checkpointPath(taskID)) },
	}
	h.r = h.newRunner()
	return h
}

func (h *harness) checkpointPath(taskID string) string {
	return filepath.Join(h.data, "checkpoints", taskID)
}

func (h *harness) newRunner() *Runner {
	r := New(h.fake, h.db, h.data, slog.New(slog.NewTextHandler(h.t.Output(), nil)))
	r.Ended = func(status string) {
		h.mu.Lock()
		h.ended = append(h.ended, status)
		h.mu.Unlock()
	}
	return r
}

func (h *harness) close() {
	h.r.Close()
	h.db.Close()
}

func (h *harness) start(req Request) store.Task {
	h.t.Helper()
	tk, err := h.r.StartTask(h.ctx, "sb", req)
	if err != nil {
		h.t.Fatalf("start task: %v", err)
	}
	h.mu.Lock()
	h.last = tk.ID
	h.mu.Unlock()
	return tk
}

// write appends s to the agent's log, as sandbox-init does with the agent's output.
func (h *harness) write(taskID, s string) {
	h.t.Helper()
	p := filepath.Join(h.ws, taskLog(taskID))
	os.MkdirAll(filepath.Dir(p), 0o755)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		h.t.Fatal(err)
	}
}

// exit writes the exit file, as sandbox-init does when the agent ends.
func (h *harness) exit(taskID string, code int) {
	h.t.Helper()
	p := filepath.Join(h.ws, taskLog(taskID)+".exit")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(strconv.Itoa(code)), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) setStopped() {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
}

func (h *harness) lastTask() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func (h *harness) sent() []syscall.Signal {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]syscall.Signal(nil), h.signals...)
}

// waitEnd blocks until the task's run has returned (time passes meanwhile in a bubble).
func (h *harness) waitEnd(taskID string) store.Task {
	h.t.Helper()
	h.waitRun(taskID)
	tk, err := h.r.GetTask(h.ctx, "sb", taskID)
	if err != nil {
		h.t.Fatal(err)
	}
	return tk
}

// waitRun waits for the task's run to return, without reading the task (it may be gone).
func (h *harness) waitRun(taskID string) {
	h.r.mu.Lock()
	j, ok := h.r.runs[taskID]
	h.r.mu.Unlock()
	if ok {
		<-j.done
	}
}

func (h *harness) events(taskID string) []store.TaskEvent {
	h.t.Helper()
	evs, err := h.db.TaskEvents(h.ctx, taskID, 0, 10000)
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

func (h *harness) result(tk store.Task) Result {
	h.t.Helper()
	var res Result
	if err := json.Unmarshal(tk.Result, &res); err != nil {
		h.t.Fatalf("result %s: %v", tk.Result, err)
	}
	return res
}

// text is a line of OpenCode's JSON stream: an assistant message.
func text(s string) string {
	b, _ := json.Marshal(s)
	return fmt.Sprintf(`{"type":"text","part":{"type":"text","text":%s}}`, b) + "\n"
}

// messages are the texts of a task's message events, in order.
func messages(t *testing.T, evs []store.TaskEvent) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		if e.Type != agent.TypeMessage {
			continue
		}
		var ev agent.Event
		if err := json.Unmarshal(e.Data, &ev); err != nil {
			t.Fatalf("event %d: %v", e.Seq, err)
		}
		out = append(out, ev.Text)
	}
	return out
}

// checkSeqs fails unless the events are numbered 1, 2, 3… and end with exactly one done.
func checkSeqs(t *testing.T, evs []store.TaskEvent) {
	t.Helper()
	dones := 0
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: ids must be 1, 2, 3… without gaps or repeats", i, e.Seq)
		}
		if e.Type == agent.TypeDone {
			dones++
		}
	}
	if dones != 1 || evs[len(evs)-1].Type != agent.TypeDone {
		t.Fatalf("%d done events, last is %q: want one, last", dones, evs[len(evs)-1].Type)
	}
}
