package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestTasks(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	task := Task{ID: "t1", SandboxID: "sb", Agent: "claude", Prompt: "do it", Status: TaskRunning, CreatedAt: t0, Deadline: t0.Add(time.Hour)}
	if err := db.CreateTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	second := task
	second.ID = "t2"
	if err := db.CreateTask(ctx, second); !errors.Is(err, ErrConflict) {
		t.Fatalf("second running task: %v, want ErrConflict", err)
	}
	other := second
	other.ID, other.SandboxID = "t3", "other"
	if err := db.CreateTask(ctx, other); err != nil {
		t.Fatalf("a task on another sandbox: %v", err)
	}
	evs, err := db.AppendTaskEvents(ctx, "t1", []TaskEvent{
		{Type: "status", Data: json.RawMessage(`{"phase":"started"}`), At: t0},
		{Type: "message", Data: json.RawMessage(`{"text":"hi"}`), At: t0},
	}, 120)
	if err != nil || evs[0].Seq != 1 || evs[1].Seq != 2 {
		t.Fatalf("append: %+v %v", evs, err)
	}
	if _, err := db.AppendTaskEvents(ctx, "t1", []TaskEvent{{Type: "tool", Data: json.RawMessage(`{}`), At: t0}}, 200); err != nil {
		t.Fatal(err)
	}
	got, err := db.TaskEvents(ctx, "t1", 1, 100)
	if err != nil || len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 3 || got[1].Type != "tool" {
		t.Fatalf("events after 1: %+v %v", got, err)
	}
	if err := db.SetTaskExec(ctx, "t1", "exec123"); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishTask(ctx, "t1", TaskSucceeded, json.RawMessage(`{"final_message":"ok"}`), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	done, err := db.GetTask(ctx, "sb", "t1")
	if err != nil || done.Status != TaskSucceeded || done.ExecID != "exec123" || done.LogOffset != 200 || string(done.Result) != `{"final_message":"ok"}` {
		t.Fatalf("finished task: %+v %v", done, err)
	}
	// The done event came with the status, carrying the result.
	last, err := db.TaskEvents(ctx, "t1", 3, 100)
	if err != nil || len(last) != 1 || last[0].Seq != 4 || last[0].Type != "done" || string(last[0].Data) != `{"final_message":"ok"}` {
		t.Fatalf("done event: %+v %v", last, err)
	}
	if err := db.CreateTask(ctx, second); err != nil {
		t.Fatalf("a new task once the first finished: %v", err)
	}
	running, _ := db.RunningTasks(ctx)
	if len(running) != 2 {
		t.Fatalf("running tasks: %d", len(running))
	}
	if _, err := db.GetTask(ctx, "other-sandbox", "t1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a task read through another sandbox: %v", err)
	}
}
