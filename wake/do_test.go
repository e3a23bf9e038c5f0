package wake

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

type countingWaker struct {
	calls  int
	err    error // returned from the call numbered failAt (1-based); 0: never
	failAt int
}

func (w *countingWaker) Wake(ctx context.Context, id string, port int) (netip.AddrPort, error) {
	w.calls++
	if id != "s" || port != 0 {
		return netip.AddrPort{}, errors.New("unexpected wake")
	}
	if w.calls == w.failAt {
		return netip.AddrPort{}, w.err
	}
	return netip.AddrPortFrom(loopback, 0), nil
}

var errDied = errors.New("died")

func TestDoRetriesOnceAfterTheContainerDied(t *testing.T) {
	w := &countingWaker{}
	runs := 0
	err := Do(context.Background(), w, "s", errDied, func() error {
		runs++
		if runs == 1 {
			return fmtWrap(errDied)
		}
		return nil
	})
	if err != nil || w.calls != 2 || runs != 2 {
		t.Fatalf("err %v, %d wakes, %d runs; want nil, 2, 2", err, w.calls, runs)
	}
}

func TestDoRetriesOnlyOnce(t *testing.T) {
	w := &countingWaker{}
	runs := 0
	err := Do(context.Background(), w, "s", errDied, func() error { runs++; return fmtWrap(errDied) })
	if !errors.Is(err, errDied) || w.calls != 2 || runs != 2 {
		t.Fatalf("err %v, %d wakes, %d runs; want died, 2, 2", err, w.calls, runs)
	}
}

func TestDoDoesNotRetryOtherErrors(t *testing.T) {
	other := errors.New("other")
	for _, opErr := range []error{nil, other} {
		w := &countingWaker{}
		runs := 0
		err := Do(context.Background(), w, "s", errDied, func() error { runs++; return opErr })
		if err != opErr || w.calls != 1 || runs != 1 {
			t.Fatalf("op error %v: err %v, %d wakes, %d runs; want it, 1, 1", opErr, err, w.calls, runs)
		}
	}
}

func TestDoWakeErrors(t *testing.T) {
	capacity := &CapacityError{Reason: "full"}
	// The first wake fails: op never runs.
	w := &countingWaker{err: capacity, failAt: 1}
	runs := 0
	err := Do(context.Background(), w, "s", errDied, func() error { runs++; return nil })
	if err != capacity || runs != 0 {
		t.Fatalf("err %v, %d runs; want the wake's error, 0", err, runs)
	}
	// The second wake fails: op runs once, and the wake's error is answered.
	w = &countingWaker{err: capacity, failAt: 2}
	runs = 0
	err = Do(context.Background(), w, "s", errDied, func() error { runs++; return errDied })
	if err != capacity || runs != 1 || w.calls != 2 {
		t.Fatalf("err %v, %d wakes, %d runs; want the wake's error, 2, 1", err, w.calls, runs)
	}
}

func fmtWrap(err error) error { return fmt.Errorf("exec in s: %w", err) }
