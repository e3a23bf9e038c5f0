// Package task runs coding agents in sandboxes. A Runner starts an agent detached through
// sandbox-init, tails its log from the host into stored events, ends the task with a
// result (the files changed come from the checkpoint taken before it), and resumes the tasks
// still running after a restart of sandboxd. It owns its runs and their goroutines, and
// uses the lifecycle manager only through the Sandboxes interface it declares.
package task

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/agent"
	"github.com/sandboxd/sandboxd/store"
)

// Sandboxes is what the runner needs from the lifecycle manager. Errors are
// *lifecycle.Error, whose codes the API maps to statuses.
type Sandboxes interface {
	// RunningSandbox returns the in-memory row of a sandbox that runs: CodeNotFound for an
	// unknown id, CodeConflict for one that is not running.
	RunningSandbox(id string) (store.Sandbox, error)
	// WorkspaceDir is the host directory of a sandbox's home.
	WorkspaceDir(id string) string
	// Busy counts work in flight on a sandbox, which no reaper stops, until done is called.
	Busy(id string) (done func())
	// CanRunAgent answers CodeUnsupported when sb cannot run ad.
	CanRunAgent(ctx context.Context, sb store.Sandbox, ad agent.Adapter) error
	// StartLoggedExec starts argv detached as the sandbox user in cwd; sandbox-init appends
	// its output to logFile and writes its exit code to logFile+".exit". It returns the
	// exec's id.
	StartLoggedExec(ctx context.Context, sb store.Sandbox, logFile string, argv []string, env map[string]string, cwd string) (execID string, err error)
	// SignalExec sends sig to a running exec's process group; an ended exec is left alone.
	SignalExec(sandboxID, execID string, sig syscall.Signal)
	// ExecExited reports an exec that has ended and its exit code; false while it runs or
	// when the engine cannot say.
	ExecExited(ctx context.Context, execID string) (code int, exited bool)

	// Issue 18: the checkpoint before each task. Checkpoint snapshots the sandbox's home
	// before task taskID runs and returns the snapshot's tree; CheckpointDir finds it
	// again (false once pruned); DropCheckpoint removes that of a task that never started.
	Checkpoint(ctx context.Context, id, taskID string) (dir string, err error)
	CheckpointDir(ctx context.Context, id, taskID string) (dir string, ok bool)
	DropCheckpoint(ctx context.Context, id, taskID string)
}

// Store keeps tasks and their events; *store.DB is one.
type Store interface {
	CreateTask(ctx context.Context, t store.Task) error
	SetTaskExec(ctx context.Context, id, execID string) error
	GetTask(ctx context.Context, sandboxID, id string) (store.Task, error)
	ListTasks(ctx context.Context, sandboxID string, limit int) ([]store.Task, error)
	ActiveTask(ctx context.Context, sandboxID string) (store.Task, bool, error)
	RunningTasks(ctx context.Context) ([]store.Task, error)
	AppendTaskEvents(ctx context.Context, taskID string, events []store.TaskEvent, logOffset int64) ([]store.TaskEvent, error)
	FinishTask(ctx context.Context, id, status string, result json.RawMessage, at time.Time) error
	TaskEvents(ctx context.Context, taskID string, after int64, limit int) ([]store.TaskEvent, error)
	SandboxEnv(ctx context.Context, id string) (map[string]string, error)
	TaskEventTotals(ctx context.Context, taskID string) (store.TaskTotals, error)
}

// Runner runs agent tasks. It is safe for concurrent use. Construct it with New, resume
// the tasks of a previous process with Resume, and run it with Run.
type Runner struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Ended, when set, is told the status of every task that ends (for metrics). It must be
	// cheap and safe for concurrent use.
	Ended func(status string)
	// MaxEvents caps the events stored per task (SANDBOXD_TASK_EVENTS_MAX); the event that
	// reaches it is followed by one "truncated" event, and later ones are dropped; the done
	// event comes as always. 0 means DefaultMaxEvents.
	MaxEvents int64
	// MaxEventBytes caps the bytes of event data stored per task (SANDBOXD_TASK_LOG_MAX),
	// the same way. 0 means DefaultMaxEventBytes.
	MaxEventBytes int64

	sandboxes Sandboxes
	db        Store
	dataDir   string // where runners before issue 18 kept their manifests (dataDir/tasks)
	log       *slog.Logger

	base context.Context // the runs' context: Close cancels it
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu     sync.Mutex
	closed bool
	runs   map[string]*job // attached jobs, with their readers' channels (hub.go)
}

// New returns a Runner over sandboxes, keeping tasks in db. dataDir is sandboxd's.
func New(sandboxes Sandboxes, db Store, dataDir string, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	base, stop := context.WithCancel(context.Background())
	return &Runner{sandboxes: sandboxes, db: db, dataDir: dataDir, log: log,
		base: base, stop: stop, runs: map[string]*job{}}
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Run waits for ctx to end, then closes the runner.
func (r *Runner) Run(ctx context.Context) error {
	<-ctx.Done()
	r.Close()
	return nil
}

// Close stops watching every task and waits for their goroutines. The agents go on in
// their sandboxes and their tasks stay running, for the next process to resume.
func (r *Runner) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.stop()
	r.wg.Wait()
}

// Running is the number of tasks this process is running or watching.
func (r *Runner) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs)
}

// launch starts the goroutine of an attached job, owned by the runner: Close joins it,
// and while it runs the sandbox counts as busy, so neither reaper stops it.
func (r *Runner) launch(j *job) {
	release := r.sandboxes.Busy(j.t.SandboxID)
	go func() {
		defer r.detach(j)
		defer release()
		j.loop(r.base)
	}()
}

// Resume picks up, at boot, every task still marked running: its runner tails the log
// again from the stored offset, and ends the task once the agent has (or fails it when
// the sandbox is gone). Call it once the lifecycle manager has booted.
func (r *Runner) Resume(ctx context.Context) error {
	list, err := r.db.RunningTasks(ctx)
	if err != nil {
		return internal(err, "read running tasks")
	}
	for _, t := range list {
		ad, ok := agent.Lookup(t.Agent)
		if !ok {
			ad, _ = agent.Lookup("opencode")
		}
		j := r.newJob(t, ad, nil)
		if tot, err := r.db.TaskEventTotals(ctx, t.ID); err != nil {
			r.log.Warn("count a resumed task's events; its caps start from zero", "task", t.ID, "err", err)
		} else {
			j.stored, j.storedBytes, j.truncated = tot.Events, tot.Bytes, tot.Truncated
		}
		if t.ExecID == "" {
			j.fail("sandboxd_lost", "sandboxd stopped before the agent started")
		}
		if !r.attach(j) {
			return nil // closed while booting: the next process resumes it
		}
		r.log.Info("resuming task", "sandbox", t.SandboxID, "task", t.ID, "offset", t.LogOffset)
		r.launch(j)
	}
	return nil
}

func errorf(code lifecycle.Code, format string, args ...any) *lifecycle.Error {
	return &lifecycle.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// internal wraps an unexpected failure; its message says what was being done.
func internal(err error, format string, args ...any) *lifecycle.Error {
	return &lifecycle.Error{Code: lifecycle.CodeInternal, Message: fmt.Sprintf(format, args...), Err: err}
}
