package wake

import (
	"context"
	"net/netip"
	"sync/atomic"
)

// fakeStarter is a Starter made of function fields; a nil paused means never paused.
type fakeStarter struct {
	running func(id string) (netip.Addr, bool)
	start   func(ctx context.Context, id string) (netip.Addr, error)
	paused  func(id string) bool
}

func (f *fakeStarter) Paused(id string) bool { return f.paused != nil && f.paused(id) }

func (f *fakeStarter) Running(id string) (netip.Addr, bool) { return f.running(id) }
func (f *fakeStarter) Start(ctx context.Context, id string) (netip.Addr, error) {
	return f.start(ctx, id)
}

var _ Starter = (*fakeStarter)(nil)

var loopback = netip.MustParseAddr("127.0.0.1")

// gatedStarter starts sandboxes that run once their Start returns; each
// Start announces itself on started and blocks until gate is closed.
type gatedStarter struct {
	fakeStarter
	up      atomic.Bool
	calls   atomic.Int32
	started chan string
	gate    chan struct{}
}

func newGatedStarter() *gatedStarter {
	g := &gatedStarter{started: make(chan string, 1000), gate: make(chan struct{})}
	g.running = func(string) (netip.Addr, bool) { return loopback, g.up.Load() }
	g.start = func(ctx context.Context, id string) (netip.Addr, error) {
		g.calls.Add(1)
		g.started <- id
		select {
		case <-g.gate:
		case <-ctx.Done():
			return netip.Addr{}, ctx.Err()
		}
		g.up.Store(true)
		return loopback, nil
	}
	return g
}

// waiting reports how many callers wait on id's start.
func (w *Waker) waiting(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f := w.starts[id]; f != nil {
		return f.waiters
	}
	return 0
}

// flights reports how many starts exist and how many probe loops run.
func (w *Waker) flights() (starts, probes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.starts), len(w.probes)
}

// plenty is a MemAvailable with room for anything.
func plenty() (uint64, error) { return 64 << 30, nil }
