package task

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/sandboxd/sandboxd/internal/timespan"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/agent"
	"github.com/sandboxd/sandboxd/store"
)

// Request asks an agent to work on a sandbox's app.
type Request struct {
	Prompt  string
	Agent   string // "opencode" or "claude"; "" is opencode
	Model   string
	Timeout time.Duration // 0: DefaultTimeout
	Env     map[string]string
}

// Task limits.
const (
	DefaultTimeout = 30 * time.Minute
	MaxTimeout     = 24 * time.Hour
	maxPrompt      = 256 << 10
)

var (
	modelPattern = regexp.MustCompile(`^[A-Za-z0-9._:/@-]{1,128}$`)
	// idPattern matches task ids: lowercase ULIDs, so one never names a path or a query.
	idPattern = regexp.MustCompile(`^[0-9a-z]{26}$`)
)

// Result is what a task ended with; it is also the data of its done event.
type Result struct {
	Status        string       `json:"status"`
	FinalMessage  string       `json:"final_message"`
	FilesChanged  []FileChange `json:"files_changed"`
	DurationMS    int64        `json:"duration_ms"`
	Usage         agent.Usage  `json:"usage"`
	ExitCode      *int         `json:"exit_code"`
	FailureReason string       `json:"failure_reason,omitempty"` // timeout, cancelled, agent_error, sandbox_stopped, sandboxd_lost, internal
	// FailureKind says what the agent reported (agent.Failure*: auth, rate_limit,
	// max_turns, aborted...), when FailureReason is agent_error.
	FailureKind string `json:"failure_kind,omitempty"`
	Error       string `json:"error,omitempty"`     // the human sentence
	ErrorRef    string `json:"error_ref,omitempty"` // OpenCode's pointer into its own logs
	// Subagents and PermissionDenials count what the run started and what the CLI refused.
	Subagents         int `json:"subagents,omitempty"`
	PermissionDenials int `json:"permission_denials,omitempty"`
	// EventsTruncated: the task reached a cap and not every event was stored (issue 11).
	EventsTruncated bool `json:"events_truncated,omitempty"`
	// FilesChangedTruncated: files_changed stopped at its bound (issue 18).
	FilesChangedTruncated bool `json:"files_changed_truncated,omitempty"`
}

func validRequest(req *Request) error {
	if strings.TrimSpace(req.Prompt) == "" || len(req.Prompt) > maxPrompt {
		return errorf(lifecycle.CodeInvalid, "prompt must be 1 byte to %d KiB of text", maxPrompt>>10)
	}
	if strings.IndexByte(req.Prompt, 0) >= 0 { // the prompt is an argv item of the agent
		return errorf(lifecycle.CodeInvalid, "prompt holds a NUL byte, which no argv can carry")
	}
	if req.Agent == "" {
		req.Agent = "opencode"
	}
	if _, ok := agent.Lookup(req.Agent); !ok {
		return errorf(lifecycle.CodeInvalid, "agent %q is unknown: use one of %s", req.Agent, strings.Join(agent.Names(), ", "))
	}
	if req.Model != "" && !modelPattern.MatchString(req.Model) {
		return errorf(lifecycle.CodeInvalid, "model %q is invalid", req.Model)
	}
	switch {
	case req.Timeout < 0 || req.Timeout > MaxTimeout:
		return errorf(lifecycle.CodeInvalid, "timeout must be between 0 and %s", timespan.Format(MaxTimeout))
	case req.Timeout == 0:
		req.Timeout = DefaultTimeout
	}
	return lifecycle.ValidEnv(req.Env)
}

// StartTask runs an agent on a running sandbox (callers wake it first) and returns at once;
// the agent's events are stored as they come. One task runs per sandbox: a second is a
// conflict naming the active one. An agent the image lacks is CodeUnsupported.
func (r *Runner) StartTask(ctx context.Context, id string, req Request) (store.Task, error) {
	if err := validRequest(&req); err != nil {
		return store.Task{}, err
	}
	sb, err := r.sandboxes.RunningSandbox(id)
	if err != nil {
		return store.Task{}, err
	}
	ad, _ := agent.Lookup(req.Agent)
	if err := r.sandboxes.CanRunAgent(ctx, sb, ad); err != nil {
		return store.Task{}, err
	}
	if active, ok, err := r.db.ActiveTask(ctx, id); err != nil {
		return store.Task{}, internal(err, "read tasks of %s", id)
	} else if ok {
		return store.Task{}, activeConflict(active)
	}

	now := r.now()
	t := store.Task{
		ID: strings.ToLower(ulid.Make().String()), SandboxID: id, Agent: req.Agent, Prompt: req.Prompt,
		Model: req.Model, Status: store.TaskRunning, CreatedAt: now, Deadline: now.Add(req.Timeout),
	}
	// The checkpoint comes before the row: a task that exists always has one (issue 18:
	// a snapshot, which RevertTask restores).
	if _, err := r.sandboxes.Checkpoint(ctx, id, t.ID); err != nil {
		return store.Task{}, err
	}
	// Attached before the row exists, so whoever learns the task's id finds its run.
	j := r.newJob(t, ad, secretValues(req.Env))
	if !r.attach(j) {
		r.sandboxes.DropCheckpoint(context.WithoutCancel(ctx), id, t.ID)
		return store.Task{}, errorf(lifecycle.CodeUnavailable, "sandboxd is shutting down; try again once it is back")
	}
	if err := r.db.CreateTask(ctx, t); err != nil {
		r.detach(j)
		r.sandboxes.DropCheckpoint(context.WithoutCancel(ctx), id, t.ID)
		if !errors.Is(err, store.ErrConflict) {
			return store.Task{}, internal(err, "record task")
		}
		if active, ok, _ := r.db.ActiveTask(ctx, id); ok {
			return store.Task{}, activeConflict(active)
		}
		return store.Task{}, errorf(lifecycle.CodeConflict, "sandbox %s already runs a task", id)
	}
	env := ad.Env()
	for k, v := range req.Env {
		env[k] = v
	}
	execID, err := r.sandboxes.StartLoggedExec(context.WithoutCancel(ctx), sb, lifecycle.Home+"/"+taskLog(t.ID),
		ad.Command(req.Prompt, req.Model), env, agent.AppDir)
	if err == nil {
		t.ExecID, j.t.ExecID = execID, execID
		err = r.db.SetTaskExec(ctx, t.ID, execID)
	}
	if err != nil {
		// The row exists: finish it as failed through the runner's one exit, with the cause.
		j.fail("internal", "could not start the agent: "+lifecycle.ErrorMessage(err))
		r.log.Error("start agent", "sandbox", id, "task", t.ID, "err", err)
	}
	r.launch(j)
	r.log.Info("task started", "sandbox", id, "task", t.ID, "agent", req.Agent)
	return t, nil
}

func activeConflict(active store.Task) error {
	return &lifecycle.Error{Code: lifecycle.CodeConflict, Message: "sandbox already runs task " + active.ID + "; cancel it or wait for it to end"}
}

// CancelTask stops a running task's agent (its whole process group, within 5s); the task
// ends cancelled. Cancelling a finished task is a no-op.
func (r *Runner) CancelTask(ctx context.Context, id, taskID string) (store.Task, error) {
	t, err := r.GetTask(ctx, id, taskID)
	if err != nil || t.Status != store.TaskRunning {
		return t, err
	}
	r.mu.Lock()
	j, ok := r.runs[taskID]
	r.mu.Unlock()
	if !ok {
		return t, errorf(lifecycle.CodeUnavailable, "task %s is not attached yet; try again", taskID)
	}
	j.cancel()
	select {
	case <-j.done:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	return r.GetTask(ctx, id, taskID)
}

// GetTask returns one task of a sandbox.
func (r *Runner) GetTask(ctx context.Context, id, taskID string) (store.Task, error) {
	if !lifecycle.ValidID(id) || !idPattern.MatchString(taskID) {
		return store.Task{}, errorf(lifecycle.CodeNotFound, "task %q not found", taskID)
	}
	t, err := r.db.GetTask(ctx, id, taskID)
	if errors.Is(err, store.ErrNotFound) {
		return t, errorf(lifecycle.CodeNotFound, "task %s not found in sandbox %s", taskID, id)
	}
	if err != nil {
		return t, internal(err, "read task")
	}
	return t, nil
}

// ListTasks returns a sandbox's tasks, newest first.
func (r *Runner) ListTasks(ctx context.Context, id string, limit int) ([]store.Task, error) {
	if !lifecycle.ValidID(id) {
		return nil, errorf(lifecycle.CodeNotFound, "sandbox %q not found", id)
	}
	list, err := r.db.ListTasks(ctx, id, limit)
	if err != nil {
		return nil, internal(err, "list tasks")
	}
	return list, nil
}

// TaskEvents returns a task's events after seq, and a channel closed when more arrive (or
// the task ends). Readers loop: read, send, wait. The channel is nil for a task this
// process does not run: nothing more will come, and the reader holds nothing.
func (r *Runner) TaskEvents(ctx context.Context, taskID string, after int64, limit int) ([]store.TaskEvent, <-chan struct{}, error) {
	wait := r.wait(taskID) // before the read: an event stored in between still wakes us
	evs, err := r.db.TaskEvents(ctx, taskID, after, limit)
	if err != nil {
		return nil, nil, internal(err, "read task events")
	}
	return evs, wait, nil
}

func resultJSON(res Result) json.RawMessage {
	if res.FilesChanged == nil {
		res.FilesChanged = []FileChange{}
	}
	b, _ := json.Marshal(res)
	return b
}
