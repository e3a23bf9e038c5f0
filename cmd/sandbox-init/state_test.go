package main

import (
	"encoding/json"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
)

// testSupervisor is a supervisor that runs nothing, for its bookkeeping.
func testSupervisor(t *testing.T, now time.Time) *supervisor {
	home := t.TempDir()
	s := newSupervisor(options{
		Home:      home,
		StatePath: filepath.Join(home, ".sandboxd", "state.json"),
	}, log.New(io.Discard, "", 0), io.Discard)
	s.now = func() time.Time { return now }
	return s
}

func readStateRaw(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("state file is not JSON: %v\n%s", err, data)
	}
	return m
}

func TestStateFileContents(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	s := testSupervisor(t, now)
	started := now.Add(-time.Minute)
	exit := &initproto.Exit{Code: 3, At: now.Add(-2 * time.Minute)}
	s.services = map[string]*service{
		"web": {spec: Spec{Name: "web", Cmd: []string{"devserver"}, Port: 4000}, state: stateRunning,
			inst: &instance{pid: 123, alive: true}, attempts: 5, startedAt: started, lastExit: exit},
		"main": {spec: Spec{Name: "main", Cmd: []string{"sleep"}}, isMain: true, state: stateStarting,
			inst: &instance{pid: 99, alive: true}, attempts: 1, startedAt: started},
		"crash": {spec: Spec{Name: "crash", Cmd: []string{"x"}}, state: stateBackoff,
			inst: &instance{pid: 50}, attempts: 2, startedAt: started,
			lastExit: &initproto.Exit{Code: 137, Signal: "SIGKILL", At: now}},
		"broken": {spec: Spec{Name: "broken", Cmd: []string{"nope"}}, state: stateBackoff,
			attempts: 3, err: `exec "nope": not found`},
	}
	s.saveState()

	path := s.opt.StatePath
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("state dir: %v, %v; want mode 0755", fi.Mode(), err)
	}
	m := readStateRaw(t, path)
	if m["updated_at"] != "2026-05-01T12:00:00.123456789Z" {
		t.Errorf("updated_at = %v", m["updated_at"])
	}
	services := m["services"].([]any)
	var names []string
	byName := map[string]map[string]any{}
	for _, v := range services {
		svc := v.(map[string]any)
		names = append(names, svc["name"].(string))
		byName[svc["name"].(string)] = svc
	}
	if want := []string{"broken", "crash", "main", "web"}; !slices.Equal(names, want) {
		t.Fatalf("services %q, want %q sorted", names, want)
	}

	web := byName["web"]
	for k, want := range map[string]any{"state": "running", "pid": 123.0, "restarts": 4.0, "port": 4000.0,
		"started_at": "2026-05-01T11:59:00.123456789Z"} {
		if web[k] != want {
			t.Errorf("web.%s = %v, want %v", k, web[k], want)
		}
	}
	le := web["last_exit"].(map[string]any)
	if le["code"] != 3.0 || le["signal"] != "" || le["at"] != "2026-05-01T11:58:00.123456789Z" {
		t.Errorf("web.last_exit = %v", le)
	}
	if _, ok := web["error"]; ok {
		t.Error("web has an error")
	}

	main := byName["main"]
	if main["state"] != "starting" || main["restarts"] != 0.0 {
		t.Errorf("main = %v", main)
	}
	for _, k := range []string{"last_exit", "port"} {
		if _, ok := main[k]; ok {
			t.Errorf("main has %s before there is one: %v", k, main)
		}
	}

	crash := byName["crash"]
	if _, ok := crash["pid"]; ok {
		t.Errorf("crash has a pid while in backoff: %v", crash)
	}
	if le := crash["last_exit"].(map[string]any); le["code"] != 137.0 || le["signal"] != "SIGKILL" {
		t.Errorf("crash.last_exit = %v", le)
	}

	broken := byName["broken"]
	if broken["error"] != `exec "nope": not found` || broken["restarts"] != 2.0 {
		t.Errorf("broken = %v", broken)
	}
	for _, k := range []string{"pid", "started_at", "last_exit"} {
		if _, ok := broken[k]; ok {
			t.Errorf("broken has %s though it never ran: %v", k, broken)
		}
	}
}

func TestStateFileWrittenOnChangeOnly(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := testSupervisor(t, now)
	s.saveState()
	m := readStateRaw(t, s.opt.StatePath)
	if svcs, ok := m["services"].([]any); !ok || len(svcs) != 0 {
		t.Fatalf("services = %#v, want []", m["services"])
	}

	s.now = func() time.Time { return now.Add(time.Second) }
	s.saveState()
	if m := readStateRaw(t, s.opt.StatePath); m["updated_at"] != "2026-05-01T12:00:00Z" {
		t.Errorf("rewritten without a change: updated_at %v", m["updated_at"])
	}

	s.services["a"] = &service{spec: Spec{Name: "a"}, state: stateBackoff, attempts: 1}
	s.saveState()
	if m := readStateRaw(t, s.opt.StatePath); m["updated_at"] != "2026-05-01T12:00:01Z" {
		t.Errorf("not rewritten after a change: updated_at %v", m["updated_at"])
	}
	entries, _ := os.ReadDir(filepath.Dir(s.opt.StatePath))
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
}

func TestExitStatusOf(t *testing.T) {
	at := time.Unix(0, 0)
	// Wait statuses as the kernel encodes them: exit code in bits 8-15,
	// terminating signal in bits 0-6.
	tests := []struct {
		ws   syscall.WaitStatus
		want initproto.Exit
		text string
	}{
		{ws: 0, want: initproto.Exit{Code: 0, At: at}, text: "code 0"},
		{ws: 3 << 8, want: initproto.Exit{Code: 3, At: at}, text: "code 3"},
		{ws: 9, want: initproto.Exit{Code: 137, Signal: "SIGKILL", At: at}, text: "killed by signal 9"},
		{ws: 15, want: initproto.Exit{Code: 143, Signal: "SIGTERM", At: at}, text: "killed by signal 15"},
		{ws: 6 | 0x80, want: initproto.Exit{Code: 134, Signal: "SIGABRT", At: at}, text: "killed by signal 6"}, // core dumped
	}
	for _, tt := range tests {
		got := exitStatusOf(tt.ws, at)
		if got != tt.want || got.String() != tt.text {
			t.Errorf("ws %#x: got %+v %q, want %+v %q", int(tt.ws), got, got, tt.want, tt.text)
		}
	}
}
