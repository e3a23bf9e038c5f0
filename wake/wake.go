// Package wake brings a sandbox up for a waiting request.
//
// It owns four rules and nothing else: one start per sandbox however many
// requests arrive for it; admission (how many starts run at once, and whether
// the host has the memory for another one); the readiness probe of a port
// (a TCP connect, shared by every waiter of that port); and the bound on how
// long a caller is held. It knows neither Docker nor HTTP: the lifecycle
// manager is reached through Starter, and the edge calls Wake.
package wake

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Starter is what wake needs from the lifecycle manager. Implementations are
// safe for concurrent use.
type Starter interface {
	// Running reports the container IP when the sandbox's container is
	// running. It reads memory only and is cheap.
	Running(id string) (netip.Addr, bool)
	// Start starts the sandbox (waiting first for a stop in progress), or
	// unpauses a paused one, and returns its container IP. It returns at once
	// for a running sandbox. Errors are the lifecycle's own; wake passes them
	// through wrapped.
	Start(ctx context.Context, id string) (netip.Addr, error)
	// Paused reports a paused sandbox: frozen, its memory held. It reads
	// memory only. Waking one is an unpause, which skips admission.
	Paused(id string) bool
}

// Waker holds requests while their sandbox starts. Create it with New, set
// the knobs before the first Wake and do not change them afterwards. A Waker
// is safe for concurrent use.
type Waker struct {
	// Timeout bounds every Wake call, measured from the call, and every start
	// (which runs detached from its callers). cmd/sandboxd sets it from
	// SANDBOXD_WAKE_TIMEOUT. Zero means 60s.
	Timeout time.Duration

	// ProbeWindow bounds the readiness probe when the sandbox was already
	// running at the call: a running app whose port is closed is reported
	// quickly instead of after Timeout. Zero means 10s.
	ProbeWindow time.Duration

	// MaxStarts is how many starts may be in flight at once. A start beyond
	// it waits for a slot as long as one of its callers still waits; a caller
	// whose deadline passes first gets a *CapacityError. Zero or less means 4.
	MaxStarts int

	// MinMemAvailable is the host memory, in bytes, that must be available
	// for a start to be admitted. Zero means 512 MiB.
	MinMemAvailable uint64

	// MemAvailable reports the host's available memory in bytes. When it
	// fails the check is skipped and the failure logged: an unreadable
	// /proc/meminfo is no evidence of pressure, and failing closed would
	// turn it into an outage. Nil means MemAvailable of /proc/meminfo.
	MemAvailable func() (uint64, error)

	// RetryAfter is the RetryAfter of every *CapacityError. Zero means 5s.
	RetryAfter time.Duration

	// MaxWaitingPerSandbox bounds the Wake calls in flight for one sandbox,
	// and MaxWaiting those for all sandboxes together: a call past either
	// gets a *CapacityError at once, so a flood of requests to one sleeping
	// sandbox holds a bounded number of goroutines and connections (issue
	// 11). Zero means 256 and 4096.
	MaxWaitingPerSandbox int
	MaxWaiting           int

	// Dial opens the probe connections. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Log receives one record per start that ran (a failed one included, so
	// callers need not log a *StartError again) and per skipped memory check.
	// Nil means discard.
	Log *slog.Logger

	// Now is the clock that measures starts and Wake calls (for Log and
	// Observe); nil means time.Now. Deadlines, probe backoff and the bound on
	// a caller's hold run on the runtime's timers, which testing/synctest
	// fakes: the tests of this package's timer logic run in synctest bubbles.
	Now func() time.Time

	// Observe, when set, is called once at the end of every Wake with the
	// sandbox id, the outcome (one of the Outcome constants) and how long
	// the call took. It must be cheap and safe for concurrent use.
	Observe func(id string, outcome string, d time.Duration)

	starter Starter
	base    context.Context // canceled by Close: ends every start and probe
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every runStart and runProbe goroutine

	semOnce sync.Once
	sem     chan struct{} // start slots, MaxStarts of them

	mu     sync.Mutex
	closed bool
	starts map[string]*startFlight
	probes map[probeKey]*probeFlight
	queue  queue
}

// The outcomes passed to Waker.Observe.
const (
	OutcomeReady      = "ready"       // already running; the port accepted a connection
	OutcomeStarted    = "started"     // waited for a start, then the port accepted
	OutcomeUnpaused   = "unpaused"    // waited for an unpause, then the port accepted
	OutcomeCapacity   = "capacity"    // *CapacityError
	OutcomeTimeout    = "timeout"     // ErrTimeout
	OutcomePortClosed = "port_closed" // *PortClosedError
	OutcomeCanceled   = "canceled"    // the caller's context was canceled
	OutcomeError      = "error"       // the Starter failed, or the Waker is closed
)

// New returns a Waker that starts sandboxes through s.
func New(s Starter) *Waker {
	ctx, cancel := context.WithCancel(context.Background())
	return &Waker{
		starter: s,
		base:    ctx,
		cancel:  cancel,
		starts:  make(map[string]*startFlight),
		probes:  make(map[probeKey]*probeFlight),
		queue:   queue{byID: make(map[string]int)},
	}
}

// Wake makes id's port accept TCP connections and returns the address to
// proxy to. Port 0 means "just running": the sandbox is started if needed
// and no port is probed (exec uses it).
//
// The call waits at most Timeout and never past ctx. It returns a
// *CapacityError when the start was refused or too many calls wait already
// (MaxWaitingPerSandbox, MaxWaiting), ErrTimeout when the start did
// not complete in time, a *PortClosedError when the sandbox runs but nothing
// accepted on the port in time, ctx.Err() when ctx was canceled, ErrClosed
// after Close, and a *StartError wrapping the Starter's error otherwise. A caller that
// leaves does not stop a start already under way.
func (w *Waker) Wake(ctx context.Context, id string, port int) (netip.AddrPort, error) {
	began := w.now()
	var ap netip.AddrPort
	var started, unpaused bool
	err := w.enter(id)
	if err == nil {
		ap, started, unpaused, err = w.wake(ctx, id, port)
		w.leave(id)
	}
	if w.Observe != nil {
		o := outcome(started, err)
		if o == OutcomeStarted && unpaused {
			o = OutcomeUnpaused
		}
		w.Observe(id, o, w.now().Sub(began))
	}
	return ap, err
}

// wake is Wake without the observation; started reports whether the call
// waited for a start, unpaused whether that start was an unpause.
func (w *Waker) wake(parent context.Context, id string, port int) (ap netip.AddrPort, started, unpaused bool, err error) {
	if port < 0 || port > 65535 {
		return netip.AddrPort{}, false, false, fmt.Errorf("wake %s: invalid port %d", id, port)
	}
	ctx, cancel := context.WithTimeout(parent, w.timeout())
	defer cancel()

	ip, running := w.starter.Running(id)
	if !running {
		if ip, unpaused, err = w.start(ctx, id); err != nil {
			return netip.AddrPort{}, true, unpaused, callerErr(parent, err)
		}
	}
	ap = netip.AddrPortFrom(ip, uint16(port))
	if port == 0 {
		return ap, !running, unpaused, nil
	}
	if running {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.probeWindow())
		defer cancel()
	}
	if err := w.probe(ctx, id, ap); err != nil {
		return netip.AddrPort{}, !running, unpaused, callerErr(parent, err)
	}
	return ap, !running, unpaused, nil
}

// callerErr turns a wait that ended because of the caller into ctx.Err():
// a canceled caller is told so, whatever the wait was for. Deadlines are
// left to the error the wait chose (ErrTimeout, *PortClosedError, ...).
func callerErr(parent context.Context, err error) error {
	if perr := parent.Err(); perr != nil && perr != context.DeadlineExceeded {
		return perr
	}
	return err
}

// Close cancels every start and probe in flight, waits for their goroutines
// to return and makes later Wake calls fail with ErrClosed. Call it after
// the edge has stopped taking requests.
func (w *Waker) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
	return nil
}

func (w *Waker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Waker) timeout() time.Duration     { return orDefault(w.Timeout, 60*time.Second) }
func (w *Waker) probeWindow() time.Duration { return orDefault(w.ProbeWindow, 10*time.Second) }
func (w *Waker) retryAfter() time.Duration  { return orDefault(w.RetryAfter, 5*time.Second) }

func (w *Waker) log() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}

func orDefault[T int | time.Duration](d, def T) T {
	if d <= 0 {
		return def
	}
	return d
}
