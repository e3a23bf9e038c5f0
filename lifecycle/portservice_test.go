package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/store"
)

// offlineManager is a Manager without Docker, knowing sb (as memory would
// after a boot) with env saved in its config file, as create saves it.
func offlineManager(t *testing.T, sb store.Sandbox, env map[string]string) *Manager {
	t.Helper()
	data := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(data, "sandboxd.db")) // its key seals the config's values
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := DefaultConfig(data)
	cfg.InitPath = "/opt/sandbox-init"
	m := New(db, nil, cfg, nil)
	for k := range env {
		sb.EnvKeys = append(sb.EnvKeys, k)
	}
	m.remember(sb)
	if env != nil {
		if err := m.writeConfig(sb, env); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(m.workspaceDir(sb.ID), initproto.ServiceLogDir), 0o755); err != nil {
		t.Fatal(err)
	}
	return m
}

// writeHome writes a file of the sandbox's home, as sandbox-init would.
func writeHome(t *testing.T, m *Manager, id, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(m.workspaceDir(id), name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPortService(t *testing.T) {
	t.Parallel()
	started := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	sb := store.Sandbox{ID: "ps1", Status: store.StatusRunning, Ports: []int{3000, 4000}, Services: []store.Service{
		{Name: "web", Cmd: []string{"npm", "run", "dev"}, Env: map[string]string{"PORT": "4000", "API_KEY": "sk-service-secret"}, Port: 4000},
	}}
	m := offlineManager(t, sb, map[string]string{"DB_PASSWORD": "sandbox-secret"})
	state, err := initproto.EncodeState(initproto.State{Services: []initproto.ServiceState{
		{Name: "main", State: initproto.StateRunning, StartedAt: started},
		{Name: "web", State: initproto.StateBackoff, Restarts: 2, StartedAt: started, LastExit: &initproto.Exit{Code: 1, At: started}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	writeHome(t, m, "ps1", initproto.StateFile, string(state))
	log := strings.Repeat("npm WARN deprecated\n", 1000) + "Error: listen EADDRINUSE\n"
	writeHome(t, m, "ps1", initproto.ServiceLog("web"), log)

	ps, err := m.PortService("ps1", 4000, 100)
	if err != nil {
		t.Fatal(err)
	}
	if ps.Name != "web" || !ps.Declared || ps.State != initproto.StateBackoff || !ps.StartedAt.Equal(started) ||
		ps.Restarts != 2 || ps.LastExit != "code 1" || ps.Log != ".sandboxd/logs/web.log" {
		t.Errorf("service: %+v", ps)
	}
	if len(ps.Tail) != 100 || !ps.TailCut || !strings.HasSuffix(string(ps.Tail), "Error: listen EADDRINUSE\n") {
		t.Errorf("tail of %d bytes (cut %v): %q", len(ps.Tail), ps.TailCut, ps.Tail)
	}
	for _, secret := range []string{"sandbox-secret", "sk-service-secret"} {
		if !slices.Contains(ps.Secrets, secret) {
			t.Errorf("secrets %q lack %q", ps.Secrets, secret)
		}
	}
	if slices.Contains(ps.Secrets, "4000") {
		t.Errorf("secrets %q hold a port, which the preview URL shows anyway", ps.Secrets)
	}

	t.Run("undeclared port: the image's command", func(t *testing.T) {
		ps, err := m.PortService("ps1", 3000, 100)
		if err != nil || ps.Name != "main" || ps.Declared || ps.State != initproto.StateRunning || ps.Log != ".sandboxd/logs/main.log" || len(ps.Tail) != 0 {
			t.Errorf("%+v, %v", ps, err)
		}
	})
	t.Run("whole log", func(t *testing.T) {
		ps, err := m.PortService("ps1", 4000, len(log)+10)
		if err != nil || string(ps.Tail) != log || ps.TailCut {
			t.Errorf("%d bytes, cut %v, %v", len(ps.Tail), ps.TailCut, err)
		}
	})
	t.Run("unknown sandbox", func(t *testing.T) {
		if _, err := m.PortService("nope", 4000, 100); err == nil {
			t.Error("no error for an unknown sandbox")
		}
	})
}

// While the sandbox does not run, the state file is the last run's: no state is reported,
// but the log is.
func TestPortServiceAsleep(t *testing.T) {
	t.Parallel()
	sb := store.Sandbox{ID: "ps2", Status: store.StatusStopped, Ports: []int{4000},
		Services: []store.Service{{Name: "web", Cmd: []string{"x"}, Port: 4000}}}
	m := offlineManager(t, sb, map[string]string{})
	state, _ := initproto.EncodeState(initproto.State{Services: []initproto.ServiceState{{Name: "web", State: initproto.StateStopped}}})
	writeHome(t, m, "ps2", initproto.StateFile, string(state))
	writeHome(t, m, "ps2", initproto.ServiceLog("web"), "bye\n")
	ps, err := m.PortService("ps2", 4000, 100)
	if err != nil || ps.Name != "web" || ps.State != "" || string(ps.Tail) != "bye\n" {
		t.Fatalf("%+v, %v", ps, err)
	}
}

// Without the env values nothing could be redacted, so no log is given: fail closed.
func TestPortServiceNoEnvNoLog(t *testing.T) {
	t.Parallel()
	sb := store.Sandbox{ID: "ps3", Status: store.StatusRunning, Ports: []int{4000}, EnvKeys: []string{"TOKEN"},
		Services: []store.Service{{Name: "web", Cmd: []string{"x"}, Port: 4000}}}
	m := offlineManager(t, sb, nil) // the config file is missing
	writeHome(t, m, "ps3", initproto.ServiceLog("web"), "TOKEN=abcdef\n")
	ps, err := m.PortService("ps3", 4000, 100)
	if err != nil || ps.Name != "web" || len(ps.Tail) != 0 {
		t.Fatalf("%+v, %v", ps, err)
	}
}

// The log's path belongs to the sandbox: a FIFO planted there does not hang the read, and
// a symlink out of the workspace is not followed.
func TestPortServiceHostileLog(t *testing.T) {
	t.Parallel()
	sb := store.Sandbox{ID: "ps4", Status: store.StatusRunning, Ports: []int{4000},
		Services: []store.Service{{Name: "fifo", Cmd: []string{"x"}, Port: 4000}, {Name: "link", Cmd: []string{"x"}, Port: 4001}}}
	m := offlineManager(t, sb, map[string]string{})
	dir := filepath.Join(m.workspaceDir("ps4"), initproto.ServiceLogDir)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.log"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "host-secret")
	os.WriteFile(outside, []byte("host secret\n"), 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, "link.log")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if ps, err := m.PortService("ps4", 4000, 100); err == nil || len(ps.Tail) != 0 {
			t.Errorf("a FIFO log: %+v, %v", ps, err)
		}
		if ps, err := m.PortService("ps4", 4001, 100); strings.Contains(string(ps.Tail), "host secret") {
			t.Errorf("a symlink out of the workspace was followed: %+v, %v", ps, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reading a planted FIFO blocked")
	}
}
