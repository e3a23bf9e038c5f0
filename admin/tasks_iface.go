package admin

import (
	"context"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// tasks is what tasks.go needs for coding agents. It is kept apart, embedded in Sandboxes,
// only while tasks move to their own package (issue 10): that change declares the task
// interface in tasks.go, and this file and the embedding go.
type tasks interface {
	StartTask(ctx context.Context, id string, req lifecycle.TaskRequest) (store.Task, error)
	CancelTask(ctx context.Context, id, taskID string) (store.Task, error)
	GetTask(ctx context.Context, id, taskID string) (store.Task, error)
	ListTasks(ctx context.Context, id string, limit int) ([]store.Task, error)
	TaskEvents(ctx context.Context, taskID string, after int64, limit int) ([]store.TaskEvent, <-chan struct{}, error)
}
