package lifecycle

import (
	"context"
	"slices"
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

func (h *harness) pause(t *testing.T, id string) {
	t.Helper()
	if err := h.m.Pause(context.Background(), id); err != nil {
		t.Fatalf("pause %s: %v", id, err)
	}
}

// Under memory pressure paused sandboxes stop first, then running ones, each tier least
// recently active first, one per pass; one with an exec in flight never stops; always_on
// and kept-alive ones only when nothing else of their tier is left.
func TestPressureSweepOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	now := time.Now()
	for _, req := range []CreateRequest{
		{ID: "recent"}, {ID: "old"}, {ID: "oldest-always", IdlePolicy: store.IdleAlwaysOn},
		{ID: "oldest-kept"}, {ID: "oldest-busy"}, {ID: "paused-recent"}, {ID: "paused-old"},
	} {
		h.create(t, req)
	}
	h.pause(t, "paused-recent")
	h.pause(t, "paused-old")
	h.setActive("recent", now.Add(-time.Minute))
	h.setActive("old", now.Add(-time.Hour))
	h.setActive("oldest-always", now.Add(-5*time.Hour))
	h.setActive("oldest-kept", now.Add(-4*time.Hour))
	h.setActive("oldest-busy", now.Add(-6*time.Hour))
	h.setActive("paused-recent", now.Add(-time.Second)) // more recent than any running one
	h.setActive("paused-old", now.Add(-2*time.Minute))
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
	want := []string{"paused-old", "paused-recent", "old", "recent", "oldest-kept", "oldest-always", ""}
	for _, w := range want {
		if got := h.m.PressureSweep(ctx, now); got != w {
			t.Fatalf("pressure stopped %q, want %q", got, w)
		}
	}
	if st := h.containerState(t, "oldest-busy"); st != "running" {
		t.Fatalf("the sandbox with an exec in flight is %s", st)
	}
	for _, id := range []string{"old", "paused-old"} {
		if st := h.containerState(t, id); st != "exited" {
			t.Fatalf("%s: container %s after a pressure stop", id, st)
		}
		if sb, _ := h.m.Get(ctx, id); sb.Status != store.StatusStopped {
			t.Fatalf("%s is %s after a pressure stop", id, sb.Status)
		}
	}
}

// The idle sweep pauses the sandboxes idle past their timeout, and stops those paused past
// their stop_after; without a pause tier (stop_after 0) it stops idle ones at once.
func TestIdleSweep(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	now := time.Now()
	h.create(t, CreateRequest{ID: "stale"})
	h.create(t, CreateRequest{ID: "fresh"})
	h.create(t, CreateRequest{ID: "custom", IdleTimeout: 3 * time.Hour})
	h.create(t, CreateRequest{ID: "always", IdlePolicy: store.IdleAlwaysOn})
	h.create(t, CreateRequest{ID: "brief", StopAfter: time.Minute})
	for _, id := range []string{"stale", "custom", "always", "brief"} {
		h.setActive(id, now.Add(-time.Hour))
	}
	sw := h.m.IdleSweep(ctx, now)
	slices.Sort(sw.Paused)
	if !slices.Equal(sw.Paused, []string{"brief", "stale"}) || len(sw.Stopped) != 0 {
		t.Fatalf("idle sweep did %+v, want [brief stale] paused", sw)
	}
	if st := h.containerState(t, "stale"); st != "paused" {
		t.Fatalf("container of an idle sandbox is %s, want paused", st)
	}
	if sb, _ := h.m.Get(ctx, "stale"); sb.Status != store.StatusPaused || sb.PausedAt.IsZero() {
		t.Fatalf("idle sandbox after the sweep: %s paused at %v", sb.Status, sb.PausedAt)
	}
	// Bytes through the edge count as activity at the next sample.
	h.setActive("fresh", now.Add(-time.Hour))
	h.m.mu.RLock()
	h.m.sandboxes["fresh"].bytes.Add(100)
	h.m.mu.RUnlock()
	if sw := h.m.IdleSweep(ctx, now); len(sw.Paused)+len(sw.Stopped) != 0 {
		t.Fatalf("sandbox with fresh traffic was put to sleep: %+v", sw)
	}
	// Two minutes on, brief is past its stop_after of one; stale is within the default 2h.
	if sw := h.m.IdleSweep(ctx, now.Add(2*time.Minute)); !slices.Equal(sw.Stopped, []string{"brief"}) || len(sw.Paused) != 0 {
		t.Fatalf("two minutes on: %+v, want [brief] stopped", sw)
	}
	if st := h.containerState(t, "brief"); st != "exited" {
		t.Fatalf("container of a sandbox paused past its stop_after is %s", st)
	}
	sw = h.m.IdleSweep(ctx, now.Add(h.cfg.StopAfter+time.Minute))
	slices.Sort(sw.Paused)
	if !slices.Equal(sw.Stopped, []string{"stale"}) || !slices.Equal(sw.Paused, []string{"custom", "fresh"}) {
		t.Fatalf("past the default stop_after: %+v, want stale stopped, custom and fresh paused", sw)
	}

	// Without a pause tier, idle means stopped.
	h.m.cfg.StopAfter = 0
	h.create(t, CreateRequest{ID: "direct"})
	h.setActive("direct", now.Add(-time.Hour))
	if sw := h.m.IdleSweep(ctx, now); !slices.Equal(sw.Stopped, []string{"direct"}) {
		t.Fatalf("without a pause tier: %+v, want [direct] stopped", sw)
	}
	if st := h.containerState(t, "always"); st != "running" {
		t.Fatalf("always_on sandbox is %s", st)
	}
}
