package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// Issue 11's proofs that need the whole daemon: a lost database, a container that dies
// on its own, a task that floods its log, and purge.

type fullSandbox struct {
	ID       string            `json:"id"`
	Status   string            `json:"status"`
	Image    string            `json:"image"`
	Ports    []int             `json:"ports"`
	EnvKeys  []string          `json:"env_keys"`
	Labels   map[string]string `json:"labels"`
	Services []any             `json:"services"`
	Memory   int64             `json:"memory"`
	LastExit *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"last_exit"`
}

func listFull(t *testing.T, d *daemon) []fullSandbox {
	t.Helper()
	var list struct {
		Sandboxes []fullSandbox `json:"sandboxes"`
	}
	if code := call(t, "GET", d.API+"/v1/sandboxes", nil, &list); code != 200 {
		t.Fatalf("list: %d", code)
	}
	for i := range list.Sandboxes {
		list.Sandboxes[i].Status = "" // runtime, not state
	}
	return list.Sandboxes
}

// previewAnswers waits until the sandbox's port answers 200 through the edge.
func previewAnswers(t *testing.T, d *daemon, id string, port int) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, fmt.Sprintf("the preview of %s:%d to answer 200", id, port), func() bool {
		resp, body := preview(t, d, id, port, "GET", "/", "", nil)
		return resp.StatusCode == 200 && strings.HasPrefix(body, "hello from")
	})
}

func moveDatabase(t *testing.T, data, to string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(filepath.Join(data, "sandboxd.db"+suffix), filepath.Join(to, "sandboxd.db"+suffix)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// The database moved away under a running daemon fails /readyz; at the next start sandboxd
// refuses, saying what it found and how to recover, and touches no container; --adopt
// brings every sandbox back as it was, previews answering; a backup taken while serving,
// restored, loses nothing, not even a sandbox created after it.
func TestLostDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "web", "ports": []int{3000}, "env": map[string]string{"SECRET": "v"},
		"labels": map[string]string{"team": "blue"}, "memory": "256m",
		"services": []any{map[string]any{"name": "api", "cmd": []string{"devserver"}, "env": map[string]string{"PORT": "4000"}, "port": 4000}}})
	mustCreate(t, d, map[string]any{"id": "two", "ports": []int{3000}})
	previewAnswers(t, d, "web", 4000)

	backupFile := filepath.Join(t.TempDir(), "backup.db")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"backup", backupFile}, func(k string) string { return e.vars[k] }, &out); err != nil {
		t.Fatalf("backup while serving: %v\n%s", err, out.String())
	}
	mustCreate(t, d, map[string]any{"id": "late", "ports": []int{3000}, "labels": map[string]string{"after": "backup"}})
	before := listFull(t, d)

	aside := t.TempDir()
	moveDatabase(t, e.data(), aside)
	testutil.Eventually(t, 10*time.Second, "/readyz to fail once the database file is gone", func() bool {
		var body struct{ Error struct{ Message string } }
		return call(t, "GET", d.API+"/readyz", nil, &body) == 503 && strings.Contains(body.Error.Message, "removed")
	})
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	err := run(context.Background(), []string{"serve"}, func(k string) string { return e.vars[k] }, &logs)
	if err == nil || !strings.Contains(err.Error(), "is missing") || !strings.Contains(err.Error(), "--adopt") ||
		!strings.Contains(err.Error(), "3 containers") {
		t.Fatalf("start without a database: %v, want a refusal naming what it found and how to recover", err)
	}
	for _, id := range []string{"web", "two", "late"} {
		info, err := e.docker.ContainerInspect(context.Background(), e.containerName(id))
		if err != nil || !info.State.Running {
			t.Fatalf("container of %s after the refusal: %v", id, err)
		}
	}
	if _, err := os.Stat(filepath.Join(e.data(), "sandboxd.db")); !os.IsNotExist(err) {
		t.Fatalf("the refusal left a database behind: %v", err)
	}

	d = e.startServe("--adopt")
	if after := listFull(t, d); !reflect.DeepEqual(after, before) {
		t.Fatalf("after --adopt:\n got %+v\nwant %+v", after, before)
	}
	previewAnswers(t, d, "web", 3000)
	previewAnswers(t, d, "web", 4000)
	previewAnswers(t, d, "two", 3000)
	if res := mustExec(t, d, "web", "sh", "-c", `printf %s "$SECRET"`); res.Stdout != "v" {
		t.Fatalf("env value after adopt: %q", res.Stdout)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}

	// Restore: the backup in place of the database, then an ordinary start. The sandbox
	// made after the backup is adopted from its container and saved config.
	moveDatabase(t, e.data(), t.TempDir())
	raw, err := os.ReadFile(backupFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.data(), "sandboxd.db"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	d = e.start()
	if after := listFull(t, d); !reflect.DeepEqual(after, before) {
		t.Fatalf("after restoring the backup:\n got %+v\nwant %+v", after, before)
	}
	previewAnswers(t, d, "two", 3000)
	previewAnswers(t, d, "late", 3000)
}

// kill 1 inside a sandbox: the API shows it stopped from the engine's die event (within
// 2 s on a quiet host: its reconcile sweep alone would take up to a minute, so the test
// allows 20 s, as parallel tests load the host), and the next preview request starts it
// again and is answered. An OOM kill shows as last_exit reason oom.
func TestContainerDiesOnItsOwn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "dies", "ports": []int{3000}})
	mustCreate(t, d, map[string]any{"id": "ooms", "ports": []int{3000}, "memory": "64m"})
	previewAnswers(t, d, "dies", 3000)

	mustExec(t, d, "dies", "sh", "-c", "kill 1")
	testutil.Eventually(t, 20*time.Second, "the API to show the killed sandbox stopped", func() bool {
		sb, _ := getSandbox(t, d, "dies")
		return sb.Status == "stopped"
	})
	resp, body := preview(t, d, "dies", 3000, "GET", "/", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "hello from") {
		t.Fatalf("the preview after the death: %d %q", resp.StatusCode, body)
	}
	if sb, _ := getSandbox(t, d, "dies"); sb.Status != "running" {
		t.Fatalf("after the preview: %s", sb.Status)
	}

	// PID 1 made the OOM killer's first choice, and the tmpfs /tmp filled past the limit.
	var res execJSON
	call(t, "POST", d.API+"/v1/sandboxes/ooms/exec", map[string]any{"cmd": []string{"sh", "-c",
		"echo 1000 > /proc/1/oom_score_adj; head -c 200m /dev/zero > /tmp/fill"}}, &res)
	var got fullSandbox
	testutil.Eventually(t, 10*time.Second, "the OOM kill to show on the sandbox", func() bool {
		call(t, "GET", d.API+"/v1/sandboxes/ooms", nil, &got)
		return got.LastExit != nil
	})
	if got.LastExit.Reason != "oom" || got.LastExit.Code != 137 {
		t.Fatalf("last_exit %+v, want code 137 reason oom", *got.LastExit)
	}
}

// countMentions counts, in every table of the database but the audit log, the rows where
// a text column equals one of values: 0 after a purge, whatever tables later issues add.
func countMentions(t *testing.T, dbPath string, values ...string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return testutil.RowsMentioning(t, db, values...)
}

// An agent that prints ten times the event cap: the task ends as usual, its last events
// are truncated then done, and no more than the cap is stored. A purge then leaves no row
// of the sandbox, the task or its events anywhere but in the audit log.
func TestTaskFloodAndPurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["SANDBOXD_TASK_EVENTS_MAX"] = "50"
	d := e.start()
	// A stand-in agent, first in PATH: 500 lines of OpenCode's stream.
	mustCreate(t, d, map[string]any{"id": "flood", "env": map[string]string{"PATH": "/home/sandbox/bin:/usr/local/bin:/usr/bin:/bin"}})
	mustExec(t, d, "flood", "sh", "-c", `mkdir -p bin && cat > bin/opencode <<'SCRIPT'
#!/bin/sh
i=0
while [ $i -lt 500 ]; do
  echo '{"type":"text","part":{"type":"text","text":"line '$i'"}}'
  i=$((i+1))
done
SCRIPT
chmod +x bin/opencode`)
	task := startTask(t, d, "flood", map[string]any{"prompt": "print a lot"})
	evs := readTaskSSE(t, openEvents(t, d, task.EventsURL, ""), nil)
	if n := len(evs); n != 52 || evs[n-2].Type != "truncated" || evs[n-1].Type != "done" {
		t.Fatalf("%d events, the last two %v: want the cap of 50, truncated, done", n, evs[max(0, n-2):])
	}
	if got := getTask(t, d, "flood", task.ID); got.Status != "succeeded" || !strings.Contains(got.FinalMessage, "line 499") {
		t.Fatalf("task after the flood: %s, final message %.60q", got.Status, got.FinalMessage)
	}

	dbPath := filepath.Join(e.data(), "sandboxd.db")
	if n := countMentions(t, dbPath, task.ID)["task_events.task_id"]; n != 52 {
		t.Fatalf("%d event rows stored, want 52", n)
	}
	// A delete keeps the workspace and the tasks: the same id created again finds both.
	if code := call(t, "DELETE", d.API+"/v1/sandboxes/flood", nil, nil); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	mustCreate(t, d, map[string]any{"id": "flood"})
	var kept struct {
		Tasks []taskJSON `json:"tasks"`
	}
	if code := call(t, "GET", d.API+"/v1/sandboxes/flood/tasks", nil, &kept); code != 200 || len(kept.Tasks) != 1 || kept.Tasks[0].ID != task.ID {
		t.Fatalf("tasks after delete and create again: %d %+v", code, kept.Tasks)
	}
	if code := call(t, "POST", d.API+"/v1/sandboxes/flood/purge", nil, nil); code != 200 {
		t.Fatalf("purge: %d", code)
	}
	if left := countMentions(t, dbPath, "flood", task.ID); len(left) != 0 {
		t.Fatalf("rows left after purge: %v", left)
	}
	resp, err := http.Get(d.API + "/v1/sandboxes/flood/tasks")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("tasks of the purged sandbox: %d %s", resp.StatusCode, b)
	}
}
