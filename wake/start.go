package wake

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// startFlight is one start of one sandbox, shared by all its callers.
type startFlight struct {
	done    chan struct{} // closed once ip, err and unpause are set
	ip      netip.Addr
	err     error
	unpause bool // the sandbox was paused: the start was an unpause

	// Guarded by Waker.mu.
	waiters  int                // callers waiting on done
	admitted bool               // holds a slot; the start runs whatever the callers do
	abandon  context.CancelFunc // ends the wait for a slot once no caller is left
}

// errAbandoned is the result of a flight whose callers all left before it
// got a slot; no caller returns it (the last to leave, which may see it, answers
// why it left instead).
var errAbandoned = errors.New("wake: every caller left before the start was admitted")

// start waits for id's start, joining the one in flight or beginning it;
// unpaused reports a start that was an unpause.
func (w *Waker) start(ctx context.Context, id string) (ip netip.Addr, unpaused bool, err error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return netip.Addr{}, false, ErrClosed
	}
	f := w.starts[id]
	if f == nil {
		f = &startFlight{done: make(chan struct{})}
		var queue context.Context
		queue, f.abandon = context.WithCancel(w.base)
		w.starts[id] = f
		// The start is detached from this caller (its values stay, its
		// cancellation does not): others may be waiting for it too, and a
		// start interrupted halfway helps nobody.
		detached := context.WithoutCancel(ctx)
		w.wg.Go(func() { w.runStart(detached, queue, id, f) })
	}
	f.waiters++
	w.mu.Unlock()

	select {
	case <-f.done:
		return f.ip, f.unpause, f.err
	case <-ctx.Done():
	case <-w.base.Done():
	}

	w.mu.Lock()
	f.waiters--
	admitted := f.admitted
	if f.waiters == 0 && !admitted {
		// Nobody wants this start any more: do not run it later, when the
		// burst that queued it is long gone.
		f.abandon()
		if w.starts[id] == f {
			delete(w.starts, id)
		}
	}
	w.mu.Unlock()

	select {
	case <-f.done: // finished while we were leaving: the result is better news...
		if !errors.Is(f.err, errAbandoned) { // ...unless it is only our own abandon
			return f.ip, f.unpause, f.err
		}
	default:
	}
	switch {
	case w.base.Err() != nil:
		return netip.Addr{}, false, ErrClosed
	case !admitted:
		return netip.Addr{}, false, &CapacityError{Reason: "too many sandboxes starting", RetryAfter: w.retryAfter()}
	default:
		return netip.Addr{}, false, fmt.Errorf("sandbox %s: %w", id, ErrTimeout)
	}
}

// runStart admits and runs one flight, then publishes its result.
func (w *Waker) runStart(detached, queue context.Context, id string, f *startFlight) {
	ip, err := w.admitAndStart(detached, queue, id, f)
	w.mu.Lock()
	f.ip, f.err = ip, err
	if w.starts[id] == f {
		delete(w.starts, id)
	}
	w.mu.Unlock()
	close(f.done)
	f.abandon()
}

func (w *Waker) admitAndStart(detached, queue context.Context, id string, f *startFlight) (netip.Addr, error) {
	// It may have been started meanwhile (by the admin API, say): a running
	// sandbox takes no slot and no memory.
	if ip, ok := w.starter.Running(id); ok {
		return ip, nil
	}
	if w.starter.Paused(id) {
		// An unpause (issue 14): the sandbox's memory is held already and the thaw
		// takes milliseconds, so neither the memory check nor a start slot applies;
		// a slot would queue it behind cold starts that take seconds. (Should the
		// sandbox be stopped before Start runs, Start starts it cold, unadmitted:
		// a narrow race, and still one start.)
		f.unpause = true
		if !w.admit(f) {
			return netip.Addr{}, errAbandoned
		}
		return w.run(detached, id, f)
	}
	if err := w.checkMemory(id); err != nil {
		return netip.Addr{}, err
	}
	sem := w.slots()
	select {
	case sem <- struct{}{}:
	default:
		select {
		case sem <- struct{}{}:
		case <-queue.Done():
			return netip.Addr{}, errAbandoned
		}
		// The starts ahead of this one used memory: look again.
		if err := w.checkMemory(id); err != nil {
			<-sem
			return netip.Addr{}, err
		}
	}
	defer func() { <-sem }()
	if !w.admit(f) { // the slot came as the last caller left
		return netip.Addr{}, errAbandoned
	}
	return w.run(detached, id, f)
}

// admit marks f admitted: from here on its start runs whatever its callers do. It
// reports false when no caller is left to admit it for.
func (w *Waker) admit(f *startFlight) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f.waiters == 0 {
		return false
	}
	f.admitted = true
	return true
}

// run calls the Starter for an admitted flight, bounded by Timeout and Close.
func (w *Waker) run(detached context.Context, id string, f *startFlight) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(detached, w.timeout())
	defer cancel()
	defer context.AfterFunc(w.base, cancel)()

	began := w.now()
	ip, err := w.starter.Start(ctx, id)
	took := w.now().Sub(began)
	if err == nil && !ip.IsValid() {
		err = errors.New("starter returned no IP address")
	}
	switch {
	case err == nil && f.unpause:
		w.log().Info("sandbox unpaused", "id", id, "took", took)
		return ip, nil
	case err == nil:
		w.log().Info("sandbox started", "id", id, "took", took)
		return ip, nil
	case w.base.Err() != nil:
		w.log().Info("sandbox start canceled by close", "id", id, "took", took, "err", err)
		return netip.Addr{}, ErrClosed
	case ctx.Err() == context.DeadlineExceeded:
		w.log().Warn("sandbox start timed out", "id", id, "took", took, "err", err)
		return netip.Addr{}, fmt.Errorf("sandbox %s: %w", id, ErrTimeout)
	default:
		w.log().Warn("sandbox start failed", "id", id, "took", took, "err", err)
		return netip.Addr{}, &StartError{ID: id, Err: err}
	}
}

// slots returns the start semaphore, sized by MaxStarts at first use.
func (w *Waker) slots() chan struct{} {
	w.semOnce.Do(func() {
		n := w.MaxStarts
		if n <= 0 {
			n = 4
		}
		w.sem = make(chan struct{}, n)
	})
	return w.sem
}
