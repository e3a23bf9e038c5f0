package task

import (
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// Cancel sends SIGTERM: an agent that obeys ends the task cancelled at once; one that
// does not gets SIGKILL after taskKillGrace, and the task ends cancelled after
// taskKillLimit whatever the agent does.
func TestCancel(t *testing.T) {
	cases := []struct {
		name    string
		obeys   bool
		signals []syscall.Signal
		within  time.Duration
	}{
		{"the agent obeys SIGTERM", true, []syscall.Signal{syscall.SIGTERM}, taskTick},
		{"the agent ignores every signal", false, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}, taskKillLimit + 2*taskTick},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t)
				defer h.close()
				h.fake.signalExec = func(_, _ string, sig syscall.Signal) {
					h.mu.Lock()
					h.signals = append(h.signals, sig)
					h.mu.Unlock()
					if c.obeys {
						h.exit(h.lastTask(), 143)
					}
				}
				h.guardSpin()
				tk := h.start(Request{Prompt: "sleep"})
				h.write(tk.ID, text("working"))
				pass()
				start := time.Now()
				got, err := h.r.CancelTask(h.ctx, "sb", tk.ID)
				took := time.Since(start)
				if err != nil || got.Status != store.TaskCancelled {
					t.Fatalf("cancel: %v, status %s", err, got.Status)
				}
				if took > c.within {
					t.Fatalf("cancel took %s, want at most %s", took, c.within)
				}
				if res := h.result(got); res.FailureReason != "cancelled" {
					t.Fatalf("failure reason %q", res.FailureReason)
				}
				if !slices.Equal(h.sent(), c.signals) {
					t.Fatalf("signals %v, want %v", h.sent(), c.signals)
				}
				checkSeqs(t, h.events(tk.ID))
				// Cancelling a task that ended changes nothing.
				again, err := h.r.CancelTask(h.ctx, "sb", tk.ID)
				if err != nil || again.Status != store.TaskCancelled || len(h.sent()) != len(c.signals) {
					t.Fatalf("second cancel: %v %s, signals %v", err, again.Status, h.sent())
				}
			})
		})
	}
}

// guardSpin ends the task (its sandbox "stops") and fails the test when the loop passes
// far more often than its tick allows: in a bubble a loop that never blocks would
// otherwise hang the test, as time cannot pass.
func (h *harness) guardSpin() {
	var passes atomic.Int64
	running := h.fake.runningSandbox
	h.fake.runningSandbox = func(id string) (store.Sandbox, error) {
		if passes.Add(1) > 10000 {
			h.t.Error("the runner's loop spins without waiting for its tick")
			h.setStopped()
		}
		return running(id)
	}
}
