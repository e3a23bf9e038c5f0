package admin

import (
	"context"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// fakeTasks fakes the tasks interface (tasks_iface.go); it goes with it.
type fakeTasks struct {
	StartTaskFn  func(ctx context.Context, id string, req lifecycle.TaskRequest) (store.Task, error)
	CancelTaskFn func(ctx context.Context, id, taskID string) (store.Task, error)
	GetTaskFn    func(ctx context.Context, id, taskID string) (store.Task, error)
	ListTasksFn  func(ctx context.Context, id string, limit int) ([]store.Task, error)
	TaskEventsFn func(ctx context.Context, taskID string, after int64, limit int) ([]store.TaskEvent, <-chan struct{}, error)
}

func (f *fakeTasks) StartTask(ctx context.Context, id string, req lifecycle.TaskRequest) (store.Task, error) {
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
