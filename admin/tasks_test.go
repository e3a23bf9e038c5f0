package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/mux"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/task"
	"github.com/sandboxd/sandboxd/store"
)

// fakeTasks fakes Tasks (tasks.go).
type fakeTasks struct {
	StartTaskFn  func(ctx context.Context, id string, req task.Request) (store.Task, error)
	CancelTaskFn func(ctx context.Context, id, taskID string) (store.Task, error)
	GetTaskFn    func(ctx context.Context, id, taskID string) (store.Task, error)
	ListTasksFn  func(ctx context.Context, id string, limit int) ([]store.Task, error)
	TaskEventsFn func(ctx context.Context, taskID string, after int64, limit int) ([]store.TaskEvent, <-chan struct{}, error)
}

func (f *fakeTasks) StartTask(ctx context.Context, id string, req task.Request) (store.Task, error) {
	return f.StartTaskFn(ctx, id, req)
}
func (f *fakeTasks) CancelTask(ctx context.Context, id, taskID string) (store.Task, error) {
	return f.CancelTaskFn(ctx, id, taskID)
}
func (f *fakeTasks) GetTask(ctx context.Context, id, taskID string) (store.Task, error) {
	return f.GetTaskFn(ctx, id, taskID)
}
func (f *fakeTasks) ListTasks(ctx context.Context, id string, limit int) ([]store.Task, error) {
	return f.ListTasksFn(ctx, id, limit)
}
func (f *fakeTasks) TaskEvents(ctx context.Context, taskID string, after int64, limit int) ([]store.TaskEvent, <-chan struct{}, error) {
	return f.TaskEventsFn(ctx, taskID, after, limit)
}

// A quiet task's event stream sends ": ping" every heartbeat and nothing between, under
// the synctest clock.
func TestTaskEventsHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		more := make(chan struct{}) // never: the task stays quiet
		d := Deps{Tasks: &fakeTasks{
			GetTaskFn: func(ctx context.Context, id, taskID string) (store.Task, error) {
				return store.Task{ID: taskID, SandboxID: id, Status: store.TaskRunning}, nil
			},
			TaskEventsFn: func(ctx context.Context, taskID string, after int64, limit int) ([]store.TaskEvent, <-chan struct{}, error) {
				return nil, more, nil
			},
		}}
		s := New(d, nil)
		ctx, cancel := context.WithCancel(context.Background())
		w := &lockedRecorder{header: http.Header{}}
		r := httptest.NewRequestWithContext(ctx, "GET", "/v1/sandboxes/a/tasks/t1/events", nil)
		r = mux.SetURLVars(r, map[string]string{"id": "a", "taskId": "t1"})
		done := make(chan error, 1)
		go func() { done <- s.taskEvents(w, r) }()

		time.Sleep(heartbeatEvery - time.Second)
		synctest.Wait()
		if code, body := w.state(); code != 200 || body != "" {
			t.Fatalf("before the first heartbeat: %d %q", code, body)
		}
		time.Sleep(2 * heartbeatEvery)
		synctest.Wait()
		if _, body := w.state(); body != ": ping\n\n: ping\n\n" {
			t.Fatalf("after two heartbeats: %q", body)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// A task start that finds the container died since the wake (lifecycle.ErrNotRunning)
// wakes the sandbox again and starts once more, as exec does (issue 11).
func TestCreateTaskAfterDeathWakesAgain(t *testing.T) {
	died := &lifecycle.Error{Code: lifecycle.CodeConflict, Message: "sandbox a stopped", Err: lifecycle.ErrNotRunning}
	var wakes, starts int
	d := Deps{
		Sandboxes: &fakeSandboxes{GetFn: running},
		Waker: &fakeWaker{WakeFn: func(ctx context.Context, id string, port int) (netip.AddrPort, error) {
			wakes++
			return awake(ctx, id, port)
		}},
		Tasks: &fakeTasks{StartTaskFn: func(ctx context.Context, id string, req task.Request) (store.Task, error) {
			if starts++; starts == 1 {
				return store.Task{}, died
			}
			return store.Task{ID: "t1", SandboxID: id, Agent: req.Agent, Status: store.TaskRunning}, nil
		}},
	}
	code, body, _ := serverCall(t, New(d, nil), "POST", "/v1/sandboxes/a/tasks", `{"prompt":"p"}`)
	if code != http.StatusAccepted || !strings.Contains(body, `"id":"t1"`) || wakes != 2 || starts != 2 {
		t.Fatalf("%d %s after %d wakes and %d starts; want 202 with the task, 2 and 2", code, body, wakes, starts)
	}
}
