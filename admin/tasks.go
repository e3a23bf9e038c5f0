package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/task"
	"github.com/sandboxd/sandboxd/store"
)

// Tasks is what the task handlers need from the task runner (lifecycle/task).
type Tasks interface {
	StartTask(ctx context.Context, id string, req task.Request) (store.Task, error)
	CancelTask(ctx context.Context, id, taskID string) (store.Task, error)
	GetTask(ctx context.Context, id, taskID string) (store.Task, error)
	ListTasks(ctx context.Context, id string, limit int) ([]store.Task, error)
	// TaskEvents returns a task's events after seq and a channel closed when more may be
	// read; a nil channel means none will come from this process.
	TaskEvents(ctx context.Context, taskID string, after int64, limit int) ([]store.TaskEvent, <-chan struct{}, error)
}

// tasks is the task runner, or an error when the API has none.
func (s *Server) tasks() (Tasks, error) {
	if s.taskRunner == nil {
		return nil, &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "tasks are not available on this server"}
	}
	return s.taskRunner, nil
}

type taskBody struct {
	Prompt  string            `json:"prompt"`
	Agent   string            `json:"agent"`
	Model   string            `json:"model"`
	Timeout duration          `json:"timeout"`
	Env     map[string]string `json:"env"`
}

// createTask starts an agent: 202 with the task id and where to follow it. A stopped
// sandbox is woken first.
func (s *Server) createTask(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var b taskBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	if _, err := s.sandboxes.Get(r.Context(), id); err != nil {
		return err
	}
	tasks, err := s.tasks()
	if err != nil {
		return err
	}
	var t store.Task
	err = s.awake(r.Context(), id, func() (err error) {
		t, err = tasks.StartTask(r.Context(), id, task.Request{
			Prompt: b.Prompt, Agent: b.Agent, Model: b.Model, Timeout: time.Duration(b.Timeout), Env: b.Env,
		})
		return err
	})
	if err != nil {
		return err
	}
	s.record(r, "task.create", id, t.ID+" "+t.Agent)
	writeJSON(w, http.StatusAccepted, map[string]any{
		"status": t.Status, "agent": t.Agent, "events_url": eventsURL(id, t.ID), "id": t.ID,
	})
	return nil
}

func eventsURL(id, taskID string) string {
	return "/v1/sandboxes/" + id + "/tasks/" + taskID + "/events"
}

// taskView is a task with its result; "id" is last, as in sandboxView.
type taskView struct {
	SandboxID string     `json:"sandbox_id"`
	Agent     string     `json:"agent"`
	Model     string     `json:"model,omitempty"`
	Prompt    string     `json:"prompt"`
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	Finished  *time.Time `json:"finished_at,omitempty"`
	EventsURL string     `json:"events_url"`
	task.Result
	ID string `json:"id"`
}

func viewTask(t store.Task, now time.Time) taskView {
	v := taskView{SandboxID: t.SandboxID, Agent: t.Agent, Model: t.Model, Prompt: t.Prompt, Status: t.Status,
		CreatedAt: t.CreatedAt, EventsURL: eventsURL(t.SandboxID, t.ID), ID: t.ID}
	json.Unmarshal(t.Result, &v.Result)
	v.Result.Status = t.Status
	if !t.FinishedAt.IsZero() {
		f := t.FinishedAt
		v.Finished = &f
	}
	if v.FilesChanged == nil {
		v.FilesChanged = []task.FileChange{}
	}
	if t.Status == store.TaskRunning {
		v.DurationMS = now.Sub(t.CreatedAt).Milliseconds()
	}
	return v
}

func (s *Server) taskIDs(r *http.Request) (string, string, error) {
	id, err := pathID(r)
	if err != nil {
		return "", "", err
	}
	return id, mux.Vars(r)["taskId"], nil
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	id, taskID, err := s.taskIDs(r)
	if err != nil {
		return err
	}
	tasks, err := s.tasks()
	if err != nil {
		return err
	}
	t, err := tasks.GetTask(r.Context(), id, taskID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewTask(t, s.now()))
	return nil
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := s.sandboxes.Get(r.Context(), id); err != nil {
		return err
	}
	tasks, err := s.tasks()
	if err != nil {
		return err
	}
	list, err := tasks.ListTasks(r.Context(), id, 100)
	if err != nil {
		return err
	}
	views := make([]taskView, len(list))
	for i, t := range list {
		views[i] = viewTask(t, s.now())
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": views})
	return nil
}

func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request) error {
	id, taskID, err := s.taskIDs(r)
	if err != nil {
		return err
	}
	tasks, err := s.tasks()
	if err != nil {
		return err
	}
	t, err := tasks.CancelTask(r.Context(), id, taskID)
	if err != nil {
		return err
	}
	s.record(r, "task.cancel", id, taskID)
	writeJSON(w, http.StatusOK, viewTask(t, s.now()))
	return nil
}

// taskEvents streams a task's events as SSE: "id:" is the sequence number, so a client
// resumes with Last-Event-ID (or ?since=); the stream ends after "done".
func (s *Server) taskEvents(w http.ResponseWriter, r *http.Request) error {
	id, taskID, err := s.taskIDs(r)
	if err != nil {
		return err
	}
	tasks, err := s.tasks()
	if err != nil {
		return err
	}
	if _, err := tasks.GetTask(r.Context(), id, taskID); err != nil {
		return err
	}
	after := int64(0)
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("since")} {
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return badRequest("Last-Event-ID / since must be a non-negative event id")
		}
		after = n
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	tick := time.NewTicker(s.heartbeat()) // as exec's streams: idle SSE through proxies
	defer tick.Stop()
	ctx := r.Context()
	for {
		evs, more, err := tasks.TaskEvents(ctx, taskID, after, 500)
		if err != nil {
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", mustJSON(map[string]string{"message": lifecycle.ErrorMessage(err)}))
			rc.Flush()
			return nil
		}
		for _, e := range evs {
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, e.Data)
			after = e.Seq
			if e.Type == "done" {
				rc.Flush()
				return nil
			}
		}
		if err := rc.Flush(); err != nil {
			return nil // the client left
		}
		if len(evs) == 500 {
			continue
		}
		if len(evs) == 0 {
			// Nothing new: a finished task whose done event the client already has ends here.
			if t, err := tasks.GetTask(ctx, id, taskID); err == nil && t.Status != store.TaskRunning {
				return nil
			}
		}
		select {
		case <-more:
		case <-tick.C:
			fmt.Fprint(w, ": ping\n\n")
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			return nil // sandboxd stops: the client reconnects with Last-Event-ID
		}
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// images reports the default image and every image a sandbox uses, with the agents each
// carries.
func (s *Server) images(w http.ResponseWriter, r *http.Request) error {
	list, err := s.sandboxes.Images(r.Context())
	if err != nil {
		return err
	}
	if tenant := callerTenant(r); tenant != "" {
		// Issue 13: which images other tenants run is theirs to know.
		if list, err = s.tenantImages(r.Context(), tenant, list); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"images": list})
	return nil
}

// tenantImages keeps the default image and those the tenant's own sandboxes use.
func (s *Server) tenantImages(ctx context.Context, tenant string, all []lifecycle.ImageInfo) ([]lifecycle.ImageInfo, error) {
	mine, err := s.sandboxes.List(ctx, store.ListOptions{Tenant: tenant})
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, sb := range mine {
		used[sb.Image] = true
	}
	out := []lifecycle.ImageInfo{}
	for _, img := range all {
		if img.Default || used[img.Image] {
			out = append(out, img)
		}
	}
	return out, nil
}
