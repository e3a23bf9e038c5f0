package lifecycle

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sandboxd/sandboxd/store"
	"github.com/sandboxd/sandboxd/wake"
)

// An operation waiting for a sandbox's lock (held here as a slow stop would hold it) gives
// up when its caller's context ends; before issue 10 it waited on a detached context and
// never returned while the lock was held. No engine is needed: nothing gets past the lock.
func TestLockWaitEndsWithCallersContext(t *testing.T) {
	t.Parallel()
	ops := []struct {
		name string
		op   func(ctx context.Context, m *Manager) error
	}{
		{"start", func(ctx context.Context, m *Manager) error { _, err := m.Start(ctx, "busy"); return err }},
		{"stop", func(ctx context.Context, m *Manager) error { return m.Stop(ctx, "busy") }},
		{"delete", func(ctx context.Context, m *Manager) error { return m.Delete(ctx, "busy") }},
		{"set services", func(ctx context.Context, m *Manager) error {
			_, err := m.SetServices(ctx, "busy", []store.Service{})
			return err
		}},
	}
	for _, tc := range ops {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := DefaultConfig(t.TempDir())
				cfg.InitPath = "/nonexistent/sandbox-init"
				m := New(nil, nil, cfg, nil)
				held, err := m.locks.lock(context.Background(), "busy")
				if err != nil {
					t.Fatal(err)
				}
				unlock := sync.OnceFunc(held)
				defer unlock()

				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- tc.op(ctx, m) }()
				time.Sleep(3 * time.Second) // on the bubble's clock: until the context ends
				synctest.Wait()
				select {
				case err := <-done:
					if ErrorCode(err) != CodeUnavailable {
						t.Errorf("%s behind a held lock = %v, want unavailable", tc.name, err)
					}
				default:
					t.Errorf("%s still waits for the lock after its context ended", tc.name)
					unlock() // let it through, so the bubble can end
					<-done
				}
			})
		})
	}
}

// A wake whose start waits behind a slow stop times out, and its admission slot is free
// again at once: the next sandbox's start is admitted, and Close does not wait for the
// stop. Before issue 10 the start kept waiting for the lock, holding the only slot.
func TestWakeTimeoutFreesSlotBehindHeldLock(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m := New(nil, nil, DefaultConfig(t.TempDir()), nil)
		w := wake.New(m)
		w.MaxStarts = 1
		w.Timeout = 2 * time.Second
		w.MemAvailable = func() (uint64, error) { return 64 << 30, nil }

		held, err := m.locks.lock(context.Background(), "slow") // a stop that takes long
		if err != nil {
			t.Fatal(err)
		}
		unlock := sync.OnceFunc(held)
		defer unlock()

		if _, err := w.Wake(context.Background(), "slow", 0); !errors.Is(err, wake.ErrTimeout) {
			t.Fatalf("wake behind a held lock = %v, want wake.ErrTimeout", err)
		}
		// "other" is unknown, so its start fails at once with not found, once admitted.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = w.Wake(ctx, "other", 0)
		var ce *wake.CapacityError
		if errors.As(err, &ce) || ErrorCode(err) != CodeNotFound {
			t.Errorf("next wake = %v, want it admitted (and not found)", err)
		}
		closed := make(chan struct{})
		go func() { w.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
		default:
			t.Error("Close waits for a start stuck behind the lock")
			unlock() // let it finish, so the bubble can end
			<-closed
		}
	})
}
