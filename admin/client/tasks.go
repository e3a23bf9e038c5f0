package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TaskRequest asks a coding agent to work in a sandbox.
type TaskRequest struct {
	Prompt  string            `json:"prompt"`
	Agent   string            `json:"agent,omitempty"` // opencode (the default) or claude
	Model   string            `json:"model,omitempty"`
	Timeout string            `json:"timeout,omitempty"` // "30m"
	Env     map[string]string `json:"env,omitempty"`     // provider keys
}

// Usage counts a task's tokens and cost.
type Usage struct {
	InputTokens      int64   `json:"input_tokens"`
	OutputTokens     int64   `json:"output_tokens"`
	CacheReadTokens  int64   `json:"cache_read_tokens"`
	CacheWriteTokens int64   `json:"cache_write_tokens"`
	CostUSD          float64 `json:"cost_usd"`
}

// FileChange is a file a task added, modified or deleted (relative to the app dir).
type FileChange struct {
	Path   string `json:"path"`
	Change string `json:"change"`
}

// Task is an agent's run and, once it ended, its result.
type Task struct {
	ID            string       `json:"id"`
	SandboxID     string       `json:"sandbox_id"`
	Agent         string       `json:"agent"`
	Model         string       `json:"model,omitempty"`
	Prompt        string       `json:"prompt"`
	Status        string       `json:"status"` // running, succeeded, failed, cancelled
	CreatedAt     time.Time    `json:"created_at"`
	FinishedAt    *time.Time   `json:"finished_at,omitempty"`
	EventsURL     string       `json:"events_url"`
	FinalMessage  string       `json:"final_message"`
	FilesChanged  []FileChange `json:"files_changed"`
	DurationMS    int64        `json:"duration_ms"`
	Usage         Usage        `json:"usage"`
	ExitCode      *int         `json:"exit_code"`
	FailureReason string       `json:"failure_reason,omitempty"` // timeout, cancelled, agent_error, ...
	FailureKind   string       `json:"failure_kind,omitempty"`   // what the agent reported: authentication_failed, rate_limit, max_turns…
	Error         string       `json:"error,omitempty"`
}

// StartTask starts an agent in the sandbox (woken first if stopped); the answer is the
// running task, whose events TaskEvents follows.
func (c *Client) StartTask(ctx context.Context, id string, req TaskRequest) (Task, error) {
	var t Task
	err := c.do(ctx, http.MethodPost, sandboxPath(id, "tasks"), nil, req, &t)
	t.SandboxID = id
	return t, err
}

// Tasks answers the sandbox's tasks, newest first.
func (c *Client) Tasks(ctx context.Context, id string) ([]Task, error) {
	var out struct {
		Tasks []Task `json:"tasks"`
	}
	err := c.do(ctx, http.MethodGet, sandboxPath(id, "tasks"), nil, nil, &out)
	return out.Tasks, err
}

// Task answers one task.
func (c *Client) Task(ctx context.Context, id, taskID string) (Task, error) {
	var t Task
	err := c.do(ctx, http.MethodGet, sandboxPath(id, "tasks", taskID), nil, nil, &t)
	return t, err
}

// CancelTask kills a running task's agent; the answer is the task, cancelled.
func (c *Client) CancelTask(ctx context.Context, id, taskID string) (Task, error) {
	var t Task
	err := c.do(ctx, http.MethodPost, sandboxPath(id, "tasks", taskID, "cancel"), nil, nil, &t)
	return t, err
}

// TaskEvent is one event of a task's stream. Seq counts from 1. The last is "done",
// whose Data is the task's result.
type TaskEvent struct {
	Seq  int64
	Type string // status, message, tool, file_changed, subagent_*, permission_denied, warning, error, usage, log, raw, done
	Data json.RawMessage
}

// AgentEvent is the body of every event but "done".
type AgentEvent struct {
	Type   string `json:"type"`
	Phase  string `json:"phase,omitempty"`
	Role   string `json:"role,omitempty"`
	Text   string `json:"text,omitempty"`
	Tool   string `json:"tool,omitempty"`
	Input  string `json:"input,omitempty"`
	Status string `json:"status,omitempty"`
	Path   string `json:"path,omitempty"`
	Reason string `json:"reason,omitempty"` // error, warning: the failure kind
	Patch  string `json:"patch,omitempty"`  // file_changed: the edit, when the CLI gave one
	// Subagent names the subagent an event belongs to; nil for the main agent.
	Subagent *Subagent       `json:"subagent,omitempty"`
	Usage    *Usage          `json:"usage,omitempty"`
	Raw      json.RawMessage `json:"raw,omitempty"`
}

// Subagent is an agent the main one started to do part of the work.
type Subagent struct {
	ID          string `json:"id"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
}

// Agent decodes the event's body.
func (e TaskEvent) Agent() (AgentEvent, error) {
	var a AgentEvent
	err := json.Unmarshal(e.Data, &a)
	return a, err
}

// maxReconnects bounds how often TaskEvents resumes a stream that broke without progress.
const maxReconnects = 5

// TaskEvents calls fn with each event of the task after seq after (0: from the first), in
// order, as they come, until "done" (then it returns nil), fn's error, or ctx's end. A
// stream that breaks (sandboxd restarting, a proxy's timeout) is resumed from the last
// event seen, so fn sees each event once.
func (c *Client) TaskEvents(ctx context.Context, id, taskID string, after int64, fn func(TaskEvent) error) error {
	failures := 0
	for {
		done, progressed, err := c.taskEventsOnce(ctx, id, taskID, &after, fn)
		switch {
		case done:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !errors.Is(err, errStreamBroke):
			return err
		}
		if progressed {
			failures = 0
		} else if t, terr := c.Task(ctx, id, taskID); terr == nil && t.Status != "running" {
			return nil // it ended and its stream has nothing more to say
		}
		if failures++; failures > maxReconnects {
			return fmt.Errorf("task events: the stream keeps ending before the task does: %w", err)
		}
		t := time.NewTimer(time.Duration(failures) * 200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

var errStreamBroke = errors.New("the event stream ended early")

// taskEventsOnce reads one connection's events.
func (c *Client) taskEventsOnce(ctx context.Context, id, taskID string, after *int64, fn func(TaskEvent) error) (done, progressed bool, err error) {
	req, err := c.request(ctx, http.MethodGet, sandboxPath(id, "tasks", taskID, "events"), nil, nil)
	if err != nil {
		return false, false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *after > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(*after, 10))
	}
	resp, err := c.send(req)
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) {
			return false, false, err
		}
		return false, false, fmt.Errorf("%w: %w", errStreamBroke, err)
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var ev TaskEvent
	var data []string
	for {
		line, err := readLine(r, maxStreamLine)
		if err != nil {
			if ctx.Err() != nil {
				return false, progressed, ctx.Err()
			}
			return false, progressed, fmt.Errorf("%w: %w", errStreamBroke, err)
		}
		s := strings.TrimSuffix(string(line), "\r")
		switch {
		case s == "":
			if ev.Type == "" && data == nil {
				continue // a heartbeat's end
			}
			ev.Data = json.RawMessage(strings.Join(data, "\n"))
			if ev.Type == "error" && ev.Seq == 0 {
				var e struct{ Message string }
				json.Unmarshal(ev.Data, &e)
				return false, progressed, &Error{Code: CodeInternal, Message: "task events: " + e.Message, RequestID: resp.Header.Get("X-Request-Id")}
			}
			if ev.Seq <= *after && ev.Seq != 0 {
				ev, data = TaskEvent{}, nil
				continue // a replay of one already seen
			}
			if ev.Seq > 0 {
				*after = ev.Seq
			}
			progressed = true
			if err := fn(ev); err != nil {
				return false, progressed, err
			}
			if ev.Type == "done" {
				return true, progressed, nil
			}
			ev, data = TaskEvent{}, nil
		case strings.HasPrefix(s, ":"): // comment: heartbeat
		case strings.HasPrefix(s, "id:"):
			ev.Seq, _ = strconv.ParseInt(strings.TrimSpace(s[3:]), 10, 64)
		case strings.HasPrefix(s, "event:"):
			ev.Type = strings.TrimSpace(s[6:])
		case strings.HasPrefix(s, "data:"):
			data = append(data, strings.TrimPrefix(s[5:], " "))
		}
	}
}
