package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Task statuses.
const (
	TaskRunning   = "running"
	TaskSucceeded = "succeeded"
	TaskFailed    = "failed"
	TaskCancelled = "cancelled"
)

// Task is one agent run in a sandbox. Result is the task's result document as JSON.
type Task struct {
	ID         string
	SandboxID  string
	Agent      string
	Prompt     string
	Model      string
	Status     string
	Result     json.RawMessage
	ExecID     string // the Docker exec running the agent
	LogOffset  int64  // bytes of the agent's output already turned into events
	Deadline   time.Time
	CreatedAt  time.Time
	FinishedAt time.Time
}

// TaskEvent is one stored event of a task; Seq starts at 1 and has no gaps.
type TaskEvent struct {
	Seq  int64
	Type string
	Data json.RawMessage
	At   time.Time
}

const taskCols = `id, sandbox_id, agent, prompt, model, status, result, exec_id, log_offset, deadline, created_at, finished_at`

// CreateTask records a running task. It returns ErrConflict when the sandbox already has a
// running task.
func (db *DB) CreateTask(ctx context.Context, t Task) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tasks (`+taskCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.SandboxID, t.Agent, t.Prompt, t.Model, t.Status, string(orEmpty(t.Result)), t.ExecID, t.LogOffset,
			ms(t.Deadline), ms(t.CreatedAt), ms(t.FinishedAt))
		if isUniqueViolation(err) { // the id, or tasks_one_running
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("insert task: %w", err)
		}
		return nil
	})
}

func orEmpty(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("{}")
	}
	return b
}

// GetTask returns a task of a sandbox, or ErrNotFound.
func (db *DB) GetTask(ctx context.Context, sandboxID, id string) (Task, error) {
	list, err := db.queryTasks(ctx, "WHERE sandbox_id = ? AND id = ?", sandboxID, id)
	if err != nil {
		return Task{}, err
	}
	if len(list) == 0 {
		return Task{}, ErrNotFound
	}
	return list[0], nil
}

// ListTasks returns a sandbox's tasks, newest first.
func (db *DB) ListTasks(ctx context.Context, sandboxID string, limit int) ([]Task, error) {
	return db.queryTasks(ctx, "WHERE sandbox_id = ? ORDER BY created_at DESC, id DESC LIMIT ?", sandboxID, limit)
}

// RunningTasks returns every task still marked running, for the boot to resume or fail.
func (db *DB) RunningTasks(ctx context.Context) ([]Task, error) {
	return db.queryTasks(ctx, "WHERE status = ? ORDER BY created_at", TaskRunning)
}

// ActiveTask returns a sandbox's running task, if any.
func (db *DB) ActiveTask(ctx context.Context, sandboxID string) (Task, bool, error) {
	list, err := db.queryTasks(ctx, "WHERE sandbox_id = ? AND status = ?", sandboxID, TaskRunning)
	if err != nil || len(list) == 0 {
		return Task{}, false, err
	}
	return list[0], true, nil
}

func (db *DB) queryTasks(ctx context.Context, clause string, args ...any) ([]Task, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+taskCols+" FROM tasks "+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("query tasks: %w", err)
	}
	defer rows.Close()
	var out []Task
	for rows.Next() {
		var t Task
		var result string
		var deadline, created, finished int64
		if err := rows.Scan(&t.ID, &t.SandboxID, &t.Agent, &t.Prompt, &t.Model, &t.Status, &result, &t.ExecID,
			&t.LogOffset, &deadline, &created, &finished); err != nil {
			return nil, fmt.Errorf("scan task: %w", err)
		}
		t.Result = json.RawMessage(result)
		t.Deadline, t.CreatedAt, t.FinishedAt = fromMS(deadline), fromMS(created), fromMS(finished)
		out = append(out, t)
	}
	return out, rows.Err()
}

// SetTaskExec records the Docker exec that runs a task's agent.
func (db *DB) SetTaskExec(ctx context.Context, id, execID string) error {
	return db.update(ctx, "UPDATE tasks SET exec_id = ? WHERE id = ?", execID, id)
}

// AppendTaskEvents stores events with the next sequence numbers and moves the task's log
// offset, in one transaction: after a crash the events and the offset agree, so reading
// the log again from the offset neither loses nor repeats an event. It returns the events
// with their Seq set, or ErrNotFound when the task is gone (its sandbox was purged).
func (db *DB) AppendTaskEvents(ctx context.Context, taskID string, events []TaskEvent, logOffset int64) ([]TaskEvent, error) {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if err := insertEvents(ctx, tx, taskID, events); err != nil {
			return err
		}
		if logOffset >= 0 {
			if _, err := tx.ExecContext(ctx, "UPDATE tasks SET log_offset = ? WHERE id = ?", logOffset, taskID); err != nil {
				return err
			}
		}
		return nil
	})
	return events, err
}

// FinishTask records a task's end and its result, and appends the "done" event carrying
// the result, in one transaction: whoever reads the done event reads the final status.
// ErrNotFound: the task is gone.
func (db *DB) FinishTask(ctx context.Context, id, status string, result json.RawMessage, at time.Time) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		done := []TaskEvent{{Type: "done", Data: orEmpty(result), At: at}}
		if err := insertEvents(ctx, tx, id, done); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE tasks SET status = ?, result = ?, finished_at = ? WHERE id = ?", status, string(orEmpty(result)), ms(at), id)
		return err
	})
}

// insertEvents gives events the task's next sequence numbers and inserts them. A task that
// is gone gets none: a run still tailing the log of a purged sandbox must not leave rows
// that no purge would find (issue 11).
func insertEvents(ctx context.Context, tx *sql.Tx, taskID string, events []TaskEvent) error {
	var exists int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tasks WHERE id = ?", taskID).Scan(&exists); err != nil {
		return err
	}
	if exists == 0 {
		return ErrNotFound
	}
	var next int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) + 1 FROM task_events WHERE task_id = ?", taskID).Scan(&next); err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO task_events (task_id, seq, type, data, at) VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i := range events {
		events[i].Seq = next
		next++
		if _, err := stmt.ExecContext(ctx, taskID, events[i].Seq, events[i].Type, string(events[i].Data), ms(events[i].At)); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
	}
	return nil
}

// TaskTotals is what a task has stored so far, for the runner's caps.
type TaskTotals struct {
	Events    int64 // rows, every type
	Bytes     int64 // bytes of their data
	Truncated bool  // a "truncated" event is among them
}

// TaskEventTotals counts a task's stored events and their bytes. A runner resumed after a
// restart starts its caps from here.
func (db *DB) TaskEventTotals(ctx context.Context, taskID string) (TaskTotals, error) {
	var t TaskTotals
	var truncated int
	err := db.r.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(length(CAST(data AS BLOB))), 0),
		coalesce(max(type = 'truncated'), 0) FROM task_events WHERE task_id = ?`, taskID).Scan(&t.Events, &t.Bytes, &truncated)
	if err != nil {
		return TaskTotals{}, fmt.Errorf("count events: %w", err)
	}
	t.Truncated = truncated == 1
	return t, nil
}

// TaskEvents returns a task's events with Seq > after, oldest first, at most limit.
func (db *DB) TaskEvents(ctx context.Context, taskID string, after int64, limit int) ([]TaskEvent, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT seq, type, data, at FROM task_events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?", taskID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var out []TaskEvent
	for rows.Next() {
		var e TaskEvent
		var data string
		var at int64
		if err := rows.Scan(&e.Seq, &e.Type, &data, &at); err != nil {
			return nil, err
		}
		e.Data, e.At = json.RawMessage(data), fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
