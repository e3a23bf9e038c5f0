package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/sandboxd/sandboxd/lifecycle/agent"
	"github.com/sandboxd/sandboxd/store"
)

// TaskRequest asks an agent to work on a sandbox's app.
type TaskRequest struct {
	Prompt  string
	Agent   string // "opencode" or "claude"; "" is opencode
	Model   string
	Timeout time.Duration // 0: DefaultTaskTimeout
	Env     map[string]string
}

// Task limits.
const (
	DefaultTaskTimeout = 30 * time.Minute
	MaxTaskTimeout     = 24 * time.Hour
	maxPrompt          = 256 << 10
)

var modelPattern = regexp.MustCompile(`^[A-Za-z0-9._:/@-]{1,128}$`)

// TaskResult is what a task ended with; it is also the data of its done event.
type TaskResult struct {
	Status        string       `json:"status"`
	FinalMessage  string       `json:"final_message"`
	FilesChanged  []FileChange `json:"files_changed"`
	DurationMS    int64        `json:"duration_ms"`
	Usage         agent.Usage  `json:"usage"`
	ExitCode      *int         `json:"exit_code"`
	FailureReason string       `json:"failure_reason,omitempty"` // timeout, cancelled, agent_error, sandbox_stopped, sandboxd_lost, internal
	Error         string       `json:"error,omitempty"`
}

func (m *Manager) validTask(req *TaskRequest) error {
	if strings.TrimSpace(req.Prompt) == "" || len(req.Prompt) > maxPrompt || strings.IndexByte(req.Prompt, 0) >= 0 {
		return errorf(CodeInvalid, "prompt must be 1 byte to %d KiB of text", maxPrompt>>10)
	}
	if req.Agent == "" {
		req.Agent = "opencode"
	}
	if _, ok := agent.Lookup(req.Agent); !ok {
		return errorf(CodeInvalid, "agent %q is unknown: use one of %s", req.Agent, strings.Join(agent.Names(), ", "))
	}
	if req.Model != "" && !modelPattern.MatchString(req.Model) {
		return errorf(CodeInvalid, "model %q is invalid", req.Model)
	}
	switch {
	case req.Timeout < 0 || req.Timeout > MaxTaskTimeout:
		return errorf(CodeInvalid, "timeout must be between 0 and %s", MaxTaskTimeout)
	case req.Timeout == 0:
		req.Timeout = DefaultTaskTimeout
	}
	return validEnv(req.Env)
}

// StartTask runs an agent on a running sandbox (callers wake it first) and returns at once;
// the agent's events are stored as they come. One task runs per sandbox: a second is a
// conflict naming the active one. An agent the image lacks is CodeUnsupported.
func (m *Manager) StartTask(ctx context.Context, id string, req TaskRequest) (store.Task, error) {
	if err := m.validTask(&req); err != nil {
		return store.Task{}, err
	}
	sb, err := m.runningSandbox(id)
	if err != nil {
		return store.Task{}, err
	}
	if m.cfg.InitPath == "" {
		return store.Task{}, errorf(CodeUnsupported, "tasks need sandbox-init (SANDBOXD_INIT_PATH)")
	}
	ad, _ := agent.Lookup(req.Agent)
	if err := m.requireAgent(ctx, sb, ad); err != nil {
		return store.Task{}, err
	}
	if active, ok, err := m.db.ActiveTask(ctx, id); err != nil {
		return store.Task{}, internal(err, "read tasks of %s", id)
	} else if ok {
		return store.Task{}, activeConflict(active)
	}

	now := m.now()
	t := store.Task{
		ID: strings.ToLower(ulid.Make().String()), SandboxID: id, Agent: req.Agent, Prompt: req.Prompt,
		Model: req.Model, Status: store.TaskRunning, CreatedAt: now, Deadline: now.Add(req.Timeout),
	}
	// The checkpoint comes before the row: a task that exists always has one.
	mf, err := takeManifest(m.workspaceDir(id))
	if err != nil {
		return store.Task{}, internal(err, "checkpoint the app of %s", id)
	}
	if err := m.saveManifest(t.ID, mf); err != nil {
		return store.Task{}, internal(err, "save the checkpoint")
	}
	if err := m.db.CreateTask(ctx, t); errors.Is(err, store.ErrConflict) {
		m.removeManifest(t.ID)
		if active, ok, _ := m.db.ActiveTask(ctx, id); ok {
			return store.Task{}, activeConflict(active)
		}
		return store.Task{}, errorf(CodeConflict, "sandbox %s already runs a task", id)
	} else if err != nil {
		m.removeManifest(t.ID)
		return store.Task{}, internal(err, "record task")
	}
	env := ad.Env()
	for k, v := range req.Env {
		env[k] = v
	}
	execID, err := m.startAgent(context.WithoutCancel(ctx), sb, t.ID, ad.Command(req.Prompt, req.Model), env)
	if err == nil {
		t.ExecID = execID
		err = m.db.SetTaskExec(ctx, t.ID, execID)
	}
	r := m.newRun(t, ad, secretValues(req.Env))
	if err != nil {
		// The row exists: finish it as failed through the runner's one exit, with the cause.
		r.fail("internal", "could not start the agent: "+ErrorMessage(err))
		m.log.Error("start agent", "sandbox", id, "task", t.ID, "err", err)
	}
	m.launch(r)
	m.log.Info("task started", "sandbox", id, "task", t.ID, "agent", req.Agent)
	return t, nil
}

func activeConflict(active store.Task) error {
	return &Error{Code: CodeConflict, Message: "sandbox already runs task " + active.ID + "; cancel it or wait for it to end"}
}

// CancelTask stops a running task's agent (its whole process group, within 5s); the task
// ends cancelled. Cancelling a finished task is a no-op.
func (m *Manager) CancelTask(ctx context.Context, id, taskID string) (store.Task, error) {
	t, err := m.GetTask(ctx, id, taskID)
	if err != nil || t.Status != store.TaskRunning {
		return t, err
	}
	m.runsMu.Lock()
	r, ok := m.runs[taskID]
	m.runsMu.Unlock()
	if !ok {
		return t, errorf(CodeUnavailable, "task %s is not attached yet; try again", taskID)
	}
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	return m.GetTask(ctx, id, taskID)
}

// GetTask returns one task of a sandbox.
func (m *Manager) GetTask(ctx context.Context, id, taskID string) (store.Task, error) {
	if !ValidID(id) || !ulidPattern.MatchString(taskID) {
		return store.Task{}, errorf(CodeNotFound, "task %q not found", taskID)
	}
	t, err := m.db.GetTask(ctx, id, taskID)
	if errors.Is(err, store.ErrNotFound) {
		return t, errorf(CodeNotFound, "task %s not found in sandbox %s", taskID, id)
	}
	if err != nil {
		return t, internal(err, "read task")
	}
	return t, nil
}

// ListTasks returns a sandbox's tasks, newest first.
func (m *Manager) ListTasks(ctx context.Context, id string, limit int) ([]store.Task, error) {
	if !ValidID(id) {
		return nil, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	list, err := m.db.ListTasks(ctx, id, limit)
	if err != nil {
		return nil, internal(err, "list tasks")
	}
	return list, nil
}

// TaskEvents returns a task's events after seq, and a channel closed when more arrive (or
// the task ends). Readers loop: read, send, wait.
func (m *Manager) TaskEvents(ctx context.Context, taskID string, after int64, limit int) ([]store.TaskEvent, <-chan struct{}, error) {
	wait := m.taskHub.wait(taskID) // before the read: an event stored in between still wakes us
	evs, err := m.db.TaskEvents(ctx, taskID, after, limit)
	if err != nil {
		return nil, nil, internal(err, "read task events")
	}
	return evs, wait, nil
}

// secretValues are the values to scrub from anything a task stores or shows: every task
// env value (provider keys come that way) longer than a few characters.
func secretValues(env map[string]string) []string {
	var out []string
	for _, v := range env {
		if len(v) >= 6 {
			out = append(out, v)
		}
	}
	return out
}

func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

func resultJSON(r TaskResult) json.RawMessage {
	if r.FilesChanged == nil {
		r.FilesChanged = []FileChange{}
	}
	b, _ := json.Marshal(r)
	return b
}
