package lifecycle

import (
	"context"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// setActive pretends a sandbox was last active at t.
func (h *harness) setActive(id string, t time.Time) {
	h.m.mu.RLock()
	h.m.sandboxes[id].lastActive.Store(t.UnixNano())
	h.m.mu.RUnlock()
}

// Under memory pressure the least recently active sandbox stops first, one per pass; one
// with an exec in flight never stops; always_on and kept-alive ones only when nothing else
// is left.
func TestPressureSweepOrder(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	now := time.Now()
	for _, req := range []CreateRequest{
		{ID: "recent"}, {ID: "old"}, {ID: "oldest-always", IdlePolicy: store.IdleAlwaysOn},
		{ID: "oldest-kept"}, {ID: "oldest-busy"},
	} {
		h.create(t, req)
	}
	h.setActive("recent", now.Add(-time.Minute))
	h.setActive("old", now.Add(-time.Hour))
	h.setActive("oldest-always", now.Add(-5*time.Hour))
	h.setActive("oldest-kept", now.Add(-4*time.Hour))
	h.setActive("oldest-busy", now.Add(-6*time.Hour))
	if _, err := h.m.Keepalive(ctx, "oldest-kept", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	h.setActive("oldest-kept", now.Add(-4*time.Hour))
	done := h.m.busy("oldest-busy")
	defer done()

	h.cfg.PressureBelow = 1 << 30
	h.m.cfg.PressureBelow = 1 << 30
	avail := uint64(2 << 30)
	h.m.MemAvailable = func() (uint64, error) { return avail, nil }
	if got := h.m.PressureSweep(ctx, now); got != "" {
		t.Fatalf("no pressure, but %s was stopped", got)
	}
	avail = 100 << 20
	want := []string{"old", "recent", "oldest-kept", "oldest-always", ""}
	for _, w := range want {
		if got := h.m.PressureSweep(ctx, now); got != w {
			t.Fatalf("pressure stopped %q, want %q", got, w)
		}
	}
	if st := h.containerState(t, "oldest-busy"); st != "running" {
		t.Fatalf("the sandbox with an exec in flight is %s", st)
	}
	if st := h.containerState(t, "old"); st != "exited" {
		t.Fatalf("old: container %s after a pressure stop", st)
	}
}

// The idle sweep stops exactly the sandboxes idle past their timeout.
func TestIdleSweep(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	now := time.Now()
	h.create(t, CreateRequest{ID: "stale"})
	h.create(t, CreateRequest{ID: "fresh"})
	h.create(t, CreateRequest{ID: "custom", IdleTimeout: 3 * time.Hour})
	h.create(t, CreateRequest{ID: "always", IdlePolicy: store.IdleAlwaysOn})
	for _, id := range []string{"stale", "custom", "always"} {
		h.setActive(id, now.Add(-time.Hour))
	}
	stopped := h.m.IdleSweep(ctx, now)
	if len(stopped) != 1 || stopped[0] != "stale" {
		t.Fatalf("idle sweep stopped %v, want [stale]", stopped)
	}
	// Bytes through the edge count as activity at the next sample.
	h.setActive("fresh", now.Add(-time.Hour))
	h.m.mu.RLock()
	h.m.sandboxes["fresh"].bytes.Add(100)
	h.m.mu.RUnlock()
	if stopped := h.m.IdleSweep(ctx, now); len(stopped) != 0 {
		t.Fatalf("sandbox with fresh traffic was stopped: %v", stopped)
	}
	if stopped := h.m.IdleSweep(ctx, now.Add(h.cfg.IdleTimeout+time.Second)); len(stopped) != 1 || stopped[0] != "fresh" {
		t.Fatalf("after a quiet idle timeout: stopped %v, want [fresh]", stopped)
	}
}
