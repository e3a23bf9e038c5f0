package wake

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// Probe timing: the first retry comes quickly (most apps bind their port
// within tens of milliseconds of starting) and the gap doubles up to a cap,
// so a slow app costs a few connects per second, not hundreds.
const (
	probeFirstBackoff = 5 * time.Millisecond
	probeMaxBackoff   = 250 * time.Millisecond
	// probeDialTimeout bounds one connect: a refused port answers at once,
	// but an address with no host behind it (a container gone) would hang.
	probeDialTimeout = time.Second
)

// probeKey names one probe loop; the address is part of it because a
// sandbox restarted meanwhile may have another IP.
type probeKey struct {
	id   string
	addr netip.AddrPort
}

// probeFlight is one probe loop shared by every waiter of its port.
type probeFlight struct {
	open   chan struct{}      // closed when the port accepted a connection
	cancel context.CancelFunc // stops the loop

	waiters int // guarded by Waker.mu
}

// probe waits until addr accepts a TCP connection or ctx ends. It returns a
// *PortClosedError when ctx ends first.
func (w *Waker) probe(ctx context.Context, id string, addr netip.AddrPort) error {
	key := probeKey{id: id, addr: addr}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	f := w.probes[key]
	if f == nil {
		var loop context.Context
		f = &probeFlight{open: make(chan struct{})}
		loop, f.cancel = context.WithCancel(w.base)
		w.probes[key] = f
		w.wg.Go(func() { w.runProbe(loop, key, f) })
	}
	f.waiters++
	w.mu.Unlock()

	select {
	case <-f.open:
		return nil
	case <-ctx.Done():
	case <-w.base.Done():
	}

	w.mu.Lock()
	f.waiters--
	if f.waiters == 0 {
		f.cancel() // nobody is waiting: stop knocking
		if w.probes[key] == f {
			delete(w.probes, key)
		}
	}
	w.mu.Unlock()

	select {
	case <-f.open:
		return nil
	default:
	}
	if w.base.Err() != nil {
		return ErrClosed
	}
	return &PortClosedError{Port: int(addr.Port())}
}

// runProbe knocks until the port opens or the loop is canceled.
func (w *Waker) runProbe(ctx context.Context, key probeKey, f *probeFlight) {
	defer f.cancel()
	ok := w.poll(ctx, key.addr.String())
	w.mu.Lock()
	if w.probes[key] == f {
		delete(w.probes, key)
	}
	w.mu.Unlock()
	if ok {
		close(f.open)
	}
}

// poll connects to addr with backoff until a connect succeeds (true) or ctx
// ends (false).
func (w *Waker) poll(ctx context.Context, addr string) bool {
	dial := w.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	backoff := probeFirstBackoff
	var timer *time.Timer
	for {
		if knock(ctx, dial, addr) {
			return true
		}
		if timer == nil {
			timer = time.NewTimer(backoff)
			defer timer.Stop()
		} else {
			timer.Reset(backoff)
		}
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
		backoff = min(2*backoff, probeMaxBackoff)
	}
}

// knock makes one connection attempt and closes what it opened.
func knock(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, probeDialTimeout)
	defer cancel()
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
