package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// Purge leaves no row of the sandbox, its tasks or their events anywhere but in the audit
// log; a delete keeps the tasks for the id's next life; another sandbox keeps everything.
func TestPurgeRemovesEverythingButTheAudit(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	for _, id := range []string{"gone", "kept"} {
		if err := db.CreateSandbox(ctx, sample(id), map[string]string{"K": "v"}); err != nil {
			t.Fatal(err)
		}
		tk := Task{ID: "task-" + id, SandboxID: id, Agent: "opencode", Prompt: "p", Status: TaskRunning, CreatedAt: t0}
		if err := db.CreateTask(ctx, tk); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AppendTaskEvents(ctx, tk.ID, []TaskEvent{{Type: "message", Data: json.RawMessage(`{}`), At: t0}}, 10); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishTask(ctx, tk.ID, TaskSucceeded, nil, t0); err != nil {
			t.Fatal(err)
		}
		if err := db.AppendAudit(ctx, Audit{At: t0, Actor: "op", Action: "sandbox.create", Target: id}); err != nil {
			t.Fatal(err)
		}
	}
	// A delete keeps the workspace, and with it the task history.
	if err := db.DeleteSandbox(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if list, err := db.ListTasks(ctx, "gone", 10); err != nil || len(list) != 1 {
		t.Fatalf("tasks after delete: %d %v, want the one task kept", len(list), err)
	}
	found, err := db.PurgeSandbox(ctx, "gone")
	if err != nil || !found {
		t.Fatalf("purge: %v %v", found, err)
	}
	if left := testutil.RowsMentioning(t, db.r, "gone", "task-gone"); len(left) != 0 {
		t.Fatalf("rows left after purge: %v", left)
	}
	if a, _ := db.AuditFor(ctx, "gone"); len(a) != 1 {
		t.Fatalf("audit lines after purge: %d, want the one kept", len(a))
	}
	if kept := testutil.RowsMentioning(t, db.r, "kept", "task-kept"); kept["task_events.task_id"] != 2 || kept["tasks.sandbox_id"] != 1 || kept["sandboxes.id"] != 1 {
		t.Fatalf("the other sandbox lost rows: %v", kept)
	}
	if found, err := db.PurgeSandbox(ctx, "gone"); err != nil || found {
		t.Fatalf("purging again: %v %v, want nothing found", found, err)
	}
	// A run still tailing the purged task stores nothing: no orphan events.
	if _, err := db.AppendTaskEvents(ctx, "task-gone", []TaskEvent{{Type: "raw", Data: json.RawMessage(`1`), At: t0}}, 20); !errors.Is(err, ErrNotFound) {
		t.Fatalf("append to a purged task: %v, want ErrNotFound", err)
	}
	if err := db.FinishTask(ctx, "task-gone", TaskFailed, nil, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finish a purged task: %v, want ErrNotFound", err)
	}
	if left := testutil.RowsMentioning(t, db.r, "gone", "task-gone"); len(left) != 0 {
		t.Fatalf("rows after writes to the purged task: %v", left)
	}
}

func TestTaskEventTotals(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if err := db.CreateTask(ctx, Task{ID: "t", SandboxID: "sb", Agent: "a", Prompt: "p", Status: TaskRunning, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.TaskEventTotals(ctx, "t"); err != nil || got != (TaskTotals{}) {
		t.Fatalf("no events: %+v %v", got, err)
	}
	// Bytes, not characters: "é" is two.
	db.AppendTaskEvents(ctx, "t", []TaskEvent{{Type: "raw", Data: json.RawMessage(`"é"`), At: t0}, {Type: "truncated", Data: json.RawMessage(`{}`), At: t0}}, 1)
	if got, err := db.TaskEventTotals(ctx, "t"); err != nil || got != (TaskTotals{Events: 2, Bytes: 6, Truncated: true}) {
		t.Fatalf("totals: %+v %v", got, err)
	}
}

func TestLastExit(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if err := db.CreateSandbox(ctx, sample("x"), nil); err != nil {
		t.Fatal(err)
	}
	want := Exit{Code: 137, Reason: ExitOOM, At: t0.Add(time.Second)}
	if err := db.SetLastExit(ctx, "x", want); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSandbox(ctx, "x")
	if err != nil || !reflect.DeepEqual(got.LastExit, want) {
		t.Fatalf("last exit: %+v %v, want %+v", got.LastExit, err, want)
	}
	if err := db.SetLastExit(ctx, "nope", want); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown sandbox: %v", err)
	}
}

// The file the daemon writes to must be the file at the path: removed or replaced, the
// check says so (and readiness fails on it).
func TestCheckFile(t *testing.T) {
	db, path := openTest(t)
	if err := db.CheckFile(); err != nil {
		t.Fatalf("fresh: %v", err)
	}
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckFile(); err == nil {
		t.Fatal("a moved-away database passed the check")
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckFile(); err == nil {
		t.Fatal("a replaced database passed the check")
	}
	// Queries still answer: the check is the only thing that can tell.
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// A backup taken while a writer runs is a consistent database holding every row committed
// before it began; restored, it opens with nothing lost.
func TestBackupOnline(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	for i := range 50 {
		if err := db.CreateSandbox(ctx, sample(fmt.Sprintf("sb%02d", i)), map[string]string{"SECRET": "s"}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() { // keeps writing throughout the backup
		for i := 0; ; i++ {
			select {
			case <-stop:
				writerDone <- nil
				return
			default:
			}
			if err := db.CreateSandbox(ctx, sample(fmt.Sprintf("w%05d", i)), nil); err != nil {
				writerDone <- err
				return
			}
		}
	}()
	dst := filepath.Join(t.TempDir(), "backup.db")
	err := Backup(ctx, path, dst)
	close(stop)
	if werr := <-writerDone; werr != nil {
		t.Fatalf("writer during backup: %v", werr)
	}
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if st, err := os.Stat(dst); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v, want mode 0600", st.Mode(), err)
	}
	if left, _ := filepath.Glob(dst + ".tmp*"); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	restored, err := Open(ctx, dst, WithSealer(db.Sealer())) // a backup opens with the key that sealed it
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer restored.Close()
	var check string
	if err := restored.r.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity: %q %v", check, err)
	}
	for i := range 50 {
		id := fmt.Sprintf("sb%02d", i)
		got, err := restored.GetSandbox(ctx, id)
		want, _ := db.GetSandbox(ctx, id)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s in the backup: %+v %v", id, got, err)
		}
		if env, _ := restored.SandboxEnv(ctx, id); env["SECRET"] != "s" {
			t.Fatalf("%s env in the backup: %v", id, env)
		}
	}

	if err := Backup(ctx, path, path); err == nil {
		t.Fatal("a backup over the live database was allowed")
	}
	missing := filepath.Join(t.TempDir(), "none.db")
	if err := Backup(ctx, missing, dst+"2"); err == nil {
		t.Fatal("a backup of a missing database succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("the backup created the missing database: %v", err)
	}
}
