package wake

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Timer logic runs in synctest bubbles, where time is virtual: probes dial
// through fakes (real sockets do not belong in a bubble) and an open port is
// one end of a net.Pipe.

// pipeDial returns a Dial that refuses until open is set and counts calls.
func pipeDial(open *atomic.Bool, calls *atomic.Int32) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		calls.Add(1)
		if !open.Load() {
			return nil, errors.New("connection refused")
		}
		c1, c2 := net.Pipe()
		c2.Close()
		return c1, nil
	}
}

func TestWakeDeadlines(t *testing.T) {
	tests := []struct {
		name    string
		running bool // the sandbox runs at the call
		hang    bool // Start blocks until its context ends
		want    func(error) bool
		after   time.Duration // when Wake returns, on the bubble's clock
	}{
		{
			name:  "start never completes",
			hang:  true,
			want:  func(err error) bool { return errors.Is(err, ErrTimeout) },
			after: time.Minute,
		},
		{
			name:  "started but port never opens",
			want:  func(err error) bool { var pe *PortClosedError; return errors.As(err, &pe) && pe.Port == 3000 },
			after: time.Minute,
		},
		{
			name:    "running but port closed",
			running: true,
			want:    func(err error) bool { var pe *PortClosedError; return errors.As(err, &pe) },
			after:   10 * time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &fakeStarter{
					running: func(string) (netip.Addr, bool) { return loopback, tc.running },
					start: func(ctx context.Context, _ string) (netip.Addr, error) {
						if tc.hang {
							<-ctx.Done()
							return netip.Addr{}, ctx.Err()
						}
						return loopback, nil
					},
				}
				var open atomic.Bool
				var calls atomic.Int32
				w := New(s)
				defer w.Close()
				w.MemAvailable = plenty
				w.Dial = pipeDial(&open, &calls)

				began := time.Now()
				_, err := w.Wake(context.Background(), "sb1", 3000)
				if !tc.want(err) {
					t.Fatalf("Wake = %v", err)
				}
				if got := time.Since(began); got != tc.after {
					t.Errorf("returned after %v, want %v", got, tc.after)
				}
			})
		})
	}
}

func TestWakeCallerDeadlineIsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newGatedStarter()
		w := New(s)
		defer w.Close()
		w.MemAvailable = plenty
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := w.Wake(ctx, "sb1", 3000)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("Wake past the caller's deadline = %v, want ErrTimeout", err)
		}
		close(s.gate) // the start goes on without its caller
		synctest.Wait()
		if !s.up.Load() {
			t.Error("start did not complete after its caller left")
		}
	})
}

func TestWakeProbeLoopIsShared(t *testing.T) {
	// The same port opening at the same moment costs the same number of
	// connects whether one caller or fifty wait for it.
	connects := func(callers int) int32 {
		var n int32
		synctest.Test(t, func(t *testing.T) {
			s := newGatedStarter()
			s.up.Store(true)
			var open atomic.Bool
			var calls atomic.Int32
			w := New(s)
			defer w.Close()
			w.Dial = pipeDial(&open, &calls)
			errs := make(chan error, callers)
			for range callers {
				go func() {
					_, err := w.Wake(context.Background(), "sb1", 3000)
					errs <- err
				}()
			}
			time.Sleep(2 * time.Second) // virtual: the app takes 2s to listen
			open.Store(true)
			for range callers {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			if _, p := w.flights(); p != 0 {
				t.Errorf("%d probe loops left", p)
			}
			n = calls.Load()
		})
		return n
	}
	one, many := connects(1), connects(50)
	if one != many {
		t.Errorf("connects: %d for one caller, %d for fifty", one, many)
	}
	// 0, 5, 15, 35, 75, 155, 315, 565, 815, ... 1815, 2065 ms: backoff
	// doubles from 5ms to the 250ms cap.
	if one != 14 {
		t.Errorf("connects over 2s = %d, want 14", one)
	}
}

func TestWakeQueuedStartGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newGatedStarter()
		s.running = func(string) (netip.Addr, bool) { return netip.Addr{}, false }
		w := New(s)
		defer w.Close()
		w.MemAvailable = plenty
		w.MaxStarts = 1

		go w.Wake(context.Background(), "holder", 0)
		<-s.started
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := w.Wake(ctx, "queued", 0)
		var ce *CapacityError
		if !errors.As(err, &ce) {
			t.Fatalf("queued Wake = %v, want *CapacityError", err)
		}
		close(s.gate)
		synctest.Wait()
		if n := s.calls.Load(); n != 1 {
			t.Errorf("Start called %d times; the abandoned start must not run", n)
		}
		if n, _ := w.flights(); n != 0 {
			t.Errorf("%d start flights left", n)
		}
	})
}
