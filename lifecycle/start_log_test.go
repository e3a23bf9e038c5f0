package lifecycle

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/store"
	"github.com/sandboxd/sandboxd/wake"
)

// records is a slog.Handler that keeps every record, for tests that count log lines.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.list = append(h.list, r.Clone())
	return nil
}

func (h *records) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.list {
		out = append(out, r.Level.String()+" "+r.Message)
	}
	return out
}

// A start that fails is logged once, by the waker that ran it; lifecycle returns the error
// (issue 10, bug 5: it was logged by both). The start fails before any Docker call: the
// workspace path is a file.
func TestFailedWakeIsLoggedOnce(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(data, "sandboxd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logs := &records{}
	log := slog.New(logs)
	m := New(db, nil, DefaultConfig(data), log)
	now := time.Now()
	sb := store.Sandbox{ID: "broken", Status: store.StatusStopped, Image: "img", IdlePolicy: store.IdleSleep, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateSandbox(context.Background(), &sb, nil); err != nil {
		t.Fatal(err)
	}
	// A uid of its own already: a sandbox from before issue 12 logs its move to one.
	if sb.UID, err = db.AssignUID(context.Background(), "broken", 200000, 299999); err != nil {
		t.Fatal(err)
	}
	m.remember(sb)
	if err := os.MkdirAll(filepath.Join(data, "workspaces"), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.workspaceDir("broken"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	w := wake.New(m)
	w.Log = log
	w.MemAvailable = func() (uint64, error) { return 64 << 30, nil }
	defer w.Close()
	if _, err := w.Wake(context.Background(), "broken", 0); err == nil {
		t.Fatal("wake of a sandbox whose workspace is a file succeeded")
	}
	if got, _ := m.cached("broken"); got.Status != store.StatusError {
		t.Errorf("status after the failed start = %s, want error", got.Status)
	}
	if got := logs.messages(); len(got) != 1 {
		t.Errorf("a failed wake logged %d lines, want 1: %q", len(got), got)
	}
}
