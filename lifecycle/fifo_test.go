package lifecycle

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO the sandbox plants where sandboxd reads its files (sandbox-init's state) is
// refused at once: opening it must never hang a handler. (The task runner's own check of
// an agent's log is in lifecycle/task.)
func TestPlantedFIFOsDoNotBlock(t *testing.T) {
	t.Parallel()
	m := New(nil, nil, DefaultConfig(t.TempDir()), nil)
	ws := m.workspaceDir("fifo")
	p := filepath.Join(ws, ".sandboxd/state.json")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := m.readState("fifo"); err == nil {
			t.Error("readState read a FIFO")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reading a planted FIFO blocked")
	}
}
