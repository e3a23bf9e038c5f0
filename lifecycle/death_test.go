package lifecycle

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/store"
)

// run starts the Manager's background work (the engine's events among it) for the test.
func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Run(ctx, Loops{Sweep: time.Hour}) }() // no sweep: events alone
	t.Cleanup(func() { cancel(); <-done })
}

// A container that dies on its own is seen within a second or two, from its die event
// alone (the sweep is an hour away): the sandbox is stopped, with last_exit saying how,
// and the next start brings it back. An exec that races the death finds it settled.
func TestDeathIsNoticed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.run(t)
	ctx := context.Background()
	h.create(t, CreateRequest{ID: "dies"})
	h.create(t, CreateRequest{ID: "ooms", MemoryBytes: 64 << 20})

	before := time.Now()
	if _, err := h.m.Exec(ctx, "dies", ExecRequest{Cmd: []string{"sh", "-c", "kill 1"}}); err != nil {
		t.Fatal(err)
	}
	stopped := func(id string) func() bool {
		return func() bool { sb, _ := h.m.cached(id); return sb.Status == store.StatusStopped }
	}
	testutil.Eventually(t, 2*time.Second, "the killed sandbox to show stopped", stopped("dies"))
	sb, err := h.m.Get(ctx, "dies")
	if err != nil || sb.LastExit.Reason != store.ExitExited || sb.LastExit.At.Before(before.Add(-time.Second)) {
		t.Fatalf("after kill 1: %+v %v", sb.LastExit, err)
	}
	// Not running: an exec is refused until a start (the API's exec wakes it first).
	if _, err := h.m.Exec(ctx, "dies", ExecRequest{Cmd: []string{"true"}}); ErrorCode(err) != CodeConflict {
		t.Fatalf("exec in the stopped sandbox: %v", err)
	}
	if _, err := h.m.Start(ctx, "dies"); err != nil {
		t.Fatal(err)
	}
	h.exec(t, "dies", "true")

	// PID 1 made the OOM killer's first choice: the container dies of it.
	_, err = h.m.Exec(ctx, "ooms", ExecRequest{Cmd: []string{"sh", "-c", "echo 1000 > /proc/1/oom_score_adj; head -c 200m /dev/zero > /tmp/fill"}})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the OOM-killed sandbox to show stopped", stopped("ooms"))
	sb, _ = h.m.Get(ctx, "ooms")
	if sb.LastExit.Reason != store.ExitOOM || sb.LastExit.Code != 137 {
		t.Fatalf("after the OOM kill: %+v", sb.LastExit)
	}
}

// An exec aimed at a container that died before its event was handled fails with
// ErrNotRunning, and leaves the sandbox settled as stopped for the caller's retry.
func TestExecIntoDeadContainerSettles(t *testing.T) {
	t.Parallel()
	h := newHarness(t) // not running: no event will tell
	ctx := context.Background()
	sb := h.create(t, CreateRequest{ID: "gone"})
	if err := h.docker.ContainerKill(ctx, sb.ContainerID, "KILL"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the container to exit", func() bool { return h.containerState(t, "gone") == "exited" })
	_, err := h.m.Exec(ctx, "gone", ExecRequest{Cmd: []string{"true"}})
	if !errors.Is(err, ErrNotRunning) || ErrorCode(err) != CodeConflict {
		t.Fatalf("exec into a dead container: %v, want a conflict wrapping ErrNotRunning", err)
	}
	if got, _ := h.m.cached("gone"); got.Status != store.StatusStopped || got.LastExit.Code != 137 {
		t.Fatalf("after the failed exec: %s %+v, want stopped with exit 137", got.Status, got.LastExit)
	}
	// A caller that woke it before the death and execs after the manager settled it finds
	// it stopped: that too wraps ErrNotRunning, so that caller wakes it again (wake.Do).
	_, err = h.m.Exec(ctx, "gone", ExecRequest{Cmd: []string{"true"}})
	if !errors.Is(err, ErrNotRunning) || ErrorCode(err) != CodeConflict || !strings.Contains(err.Error(), "is stopped, not running") {
		t.Fatalf("exec into a sandbox settled as stopped: %v, want a conflict wrapping ErrNotRunning", err)
	}
}
