package wake

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// queued reports the Wake calls counted in flight, for id and in all.
func (w *Waker) queued(id string) (perID, total int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queue.byID[id], w.queue.total
}

func TestWakeQueueBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newGatedStarter()
		s.running = func(string) (netip.Addr, bool) { return loopback, false }
		w := New(s)
		defer w.Close()
		w.MemAvailable = plenty
		w.MaxWaitingPerSandbox, w.MaxWaiting = 3, 5
		w.RetryAfter = 7 * time.Second
		var capacity atomic.Int32
		w.Observe = func(_, o string, _ time.Duration) {
			if o == OutcomeCapacity {
				capacity.Add(1)
			}
		}

		errs := make(chan error, 5)
		wake := func(id string) { _, err := w.Wake(context.Background(), id, 0); errs <- err }
		for range 3 {
			go wake("a")
		}
		synctest.Wait()

		began := time.Now()
		_, err := w.Wake(context.Background(), "a", 0)
		var ce *CapacityError
		if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "sandbox a") || ce.RetryAfter != 7*time.Second {
			t.Fatalf("fourth Wake for a = %v; want a *CapacityError naming a, retry after 7s", err)
		}
		if time.Since(began) != 0 {
			t.Error("a refused call waited")
		}

		// Another sandbox has its own bound, up to the total.
		for range 2 {
			go wake("b")
		}
		synctest.Wait()
		if _, err := w.Wake(context.Background(), "c", 0); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "sandboxes (5)") {
			t.Fatalf("sixth Wake in all = %v; want a *CapacityError for the total", err)
		}
		if a, all := w.queued("a"); a != 3 || all != 5 {
			t.Fatalf("counted %d for a, %d in all; want 3 and 5 (refused calls are not counted)", a, all)
		}

		close(s.gate)
		for range 5 {
			if err := <-errs; err != nil {
				t.Errorf("a call within the bounds: %v", err)
			}
		}
		if _, all := w.queued("a"); all != 0 || len(w.queue.byID) != 0 {
			t.Errorf("after every call returned: %d counted, %d sandboxes in the map", all, len(w.queue.byID))
		}
		if _, err := w.Wake(context.Background(), "a", 0); err != nil {
			t.Errorf("a Wake once the queue drained: %v", err)
		}
		if n := capacity.Load(); n != 2 {
			t.Errorf("observed %d capacity outcomes, want 2", n)
		}
	})
}

func TestWakeQueueCountsCallersThatLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newGatedStarter()
		s.running = func(string) (netip.Addr, bool) { return loopback, false }
		w := New(s)
		defer w.Close()
		w.MemAvailable = plenty
		w.MaxWaitingPerSandbox = 1
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := w.Wake(ctx, "a", 0); done <- err }()
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled Wake = %v", err)
		}
		if n, _ := w.queued("a"); n != 0 {
			t.Fatalf("a caller that left is still counted (%d)", n)
		}
		close(s.gate)
	})
}
