package wake

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// listen opens a real listener on loopback and returns its port.
func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func newWaker(t *testing.T, s Starter) *Waker {
	t.Helper()
	w := New(s)
	w.MemAvailable = plenty
	t.Cleanup(func() { w.Close() })
	return w
}

func TestWakeManyCallersOneStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newGatedStarter()
		w := newWaker(t, s)
		var open atomic.Bool
		var dials atomic.Int32
		open.Store(true)
		w.Dial = pipeDial(&open, &dials)

		const callers = 100
		want := netip.AddrPortFrom(loopback, 3000)
		errs := make(chan error, callers)
		for range callers {
			go func() {
				ap, err := w.Wake(t.Context(), "sb1", 3000)
				if err == nil && ap != want {
					err = errors.New("got " + ap.String())
				}
				errs <- err
			}()
		}
		synctest.Wait() // every caller is blocked: on the start, or on its way to it
		if n := w.waiting("sb1"); n != callers {
			t.Errorf("%d callers wait on the start, want all %d", n, callers)
		}
		close(s.gate)
		for range callers {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if n := s.calls.Load(); n != 1 {
			t.Errorf("Start called %d times, want 1", n)
		}
	})
}

func TestWakePortOpensLater(t *testing.T) {
	// Reserve a port, then free it: probes are refused until the test opens
	// the listener again, which it does only once it saw a refused probe.
	ln, port := listen(t)
	ln.Close()
	s := &fakeStarter{
		running: func(string) (netip.Addr, bool) { return netip.Addr{}, false },
		start:   func(context.Context, string) (netip.Addr, error) { return loopback, nil },
	}
	refused := make(chan struct{})
	var once sync.Once
	var dials atomic.Int32
	w := newWaker(t, s)
	w.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			once.Do(func() { close(refused) })
		}
		return c, err
	}

	const callers = 20
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := w.Wake(t.Context(), "sb1", port)
			errs <- err
		}()
	}
	<-refused
	ln2, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("reopen port: %v", err)
	}
	defer ln2.Close()
	for range callers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d callers, %d connects", callers, dials.Load())
}

func TestWakeCallerLeavesStartCompletes(t *testing.T) {
	synctest.Test(t, testWakeCallerLeavesStartCompletes)
}

func testWakeCallerLeavesStartCompletes(t *testing.T) {
	s := newGatedStarter()
	finished := make(chan error, 1)
	inner := s.start
	s.start = func(ctx context.Context, id string) (netip.Addr, error) {
		ip, err := inner(ctx, id)
		if err == nil {
			err = ctx.Err() // the start's context must outlive the caller
		}
		finished <- err
		return ip, err
	}
	var outcomes []string
	var mu sync.Mutex
	w := newWaker(t, s)
	var open atomic.Bool
	var dials atomic.Int32
	open.Store(true)
	w.Dial = pipeDial(&open, &dials)
	w.Observe = func(id, outcome string, d time.Duration) {
		mu.Lock()
		outcomes = append(outcomes, outcome)
		mu.Unlock()
	}

	ctx, cancel := context.WithCancel(t.Context())
	returned := make(chan error, 1)
	go func() {
		_, err := w.Wake(ctx, "sb1", 3000)
		returned <- err
	}()
	<-s.started
	cancel()
	synctest.Wait()
	select {
	case err := <-returned:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wake after cancel = %v, want context.Canceled", err)
		}
	default:
		t.Fatal("Wake did not return after its context was canceled")
	}
	close(s.gate)
	if err := <-finished; err != nil {
		t.Fatalf("start did not complete: %v", err)
	}
	if !s.up.Load() {
		t.Fatal("sandbox not running after the start completed")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(outcomes) != 1 || outcomes[0] != OutcomeCanceled {
		t.Errorf("outcomes = %v, want [%s]", outcomes, OutcomeCanceled)
	}
}

func TestWakeMaxStarts(t *testing.T) {
	synctest.Test(t, testWakeMaxStarts)
}

func testWakeMaxStarts(t *testing.T) {
	var inFlight, peak atomic.Int32
	s := newGatedStarter()
	inner := s.start
	s.start = func(ctx context.Context, id string) (netip.Addr, error) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		defer inFlight.Add(-1)
		return inner(ctx, id)
	}
	s.running = func(string) (netip.Addr, bool) { return netip.Addr{}, false }
	w := newWaker(t, s)
	w.MaxStarts = 3
	var open atomic.Bool
	var dials atomic.Int32
	open.Store(true)
	w.Dial = pipeDial(&open, &dials)

	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	errs := make(chan error, len(ids))
	for _, id := range ids {
		go func() {
			_, err := w.Wake(t.Context(), id, 3000)
			errs <- err
		}()
	}
	for range 3 {
		<-s.started
	}
	synctest.Wait() // every start is queued or running
	if n, _ := w.flights(); n != len(ids) || len(w.slots()) != 3 {
		t.Errorf("%d start flights, %d slots taken; want %d and 3", n, len(w.slots()), len(ids))
	}
	select {
	case id := <-s.started:
		t.Fatalf("start of %s began beyond MaxStarts", id)
	default:
	}
	close(s.gate)
	for range ids {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := peak.Load(); got != 3 {
		t.Errorf("peak concurrent starts = %d, want 3", got)
	}
	if got := s.calls.Load(); int(got) != len(ids) {
		t.Errorf("starts = %d, want %d", got, len(ids))
	}
}

func TestWakeMemoryRefusal(t *testing.T) {
	s := newGatedStarter()
	s.start = func(context.Context, string) (netip.Addr, error) {
		t.Error("Start called despite low memory")
		return loopback, nil
	}
	w := newWaker(t, s)
	w.MemAvailable = func() (uint64, error) { return 100 << 20, nil }

	_, err := w.Wake(t.Context(), "sb1", 3000)
	var ce *CapacityError
	if !errors.As(err, &ce) {
		t.Fatalf("Wake = %v, want *CapacityError", err)
	}
	if ce.RetryAfter != 5*time.Second {
		t.Errorf("RetryAfter = %v, want the 5s default", ce.RetryAfter)
	}
}

func TestWakeMemoryUnreadableSkipsCheck(t *testing.T) {
	s := newGatedStarter()
	close(s.gate)
	w := newWaker(t, s)
	w.MemAvailable = func() (uint64, error) { return 0, errors.New("no /proc here") }
	if _, err := w.Wake(t.Context(), "sb1", 0); err != nil {
		t.Fatalf("Wake = %v, want a start despite the unreadable meminfo", err)
	}
}

func TestWakeRunningSandboxIsNotAdmitted(t *testing.T) {
	_, port := listen(t)
	s := newGatedStarter()
	s.up.Store(true)
	w := newWaker(t, s)
	w.MemAvailable = func() (uint64, error) { return 0, nil } // would refuse any start
	ap, err := w.Wake(t.Context(), "sb1", port)
	if err != nil || ap != netip.AddrPortFrom(loopback, uint16(port)) {
		t.Fatalf("Wake = %v, %v", ap, err)
	}
	if s.calls.Load() != 0 {
		t.Error("Start called for a running sandbox")
	}
}

func TestWakePortZeroDoesNotProbe(t *testing.T) {
	s := newGatedStarter()
	close(s.gate)
	w := newWaker(t, s)
	w.Dial = func(context.Context, string, string) (net.Conn, error) {
		t.Error("probe dialed for port 0")
		return nil, errors.New("no")
	}
	ap, err := w.Wake(t.Context(), "sb1", 0)
	if err != nil || ap != netip.AddrPortFrom(loopback, 0) {
		t.Fatalf("Wake = %v, %v", ap, err)
	}
}

func TestWakeStarterErrorWrapped(t *testing.T) {
	boom := errors.New("image missing")
	s := &fakeStarter{
		running: func(string) (netip.Addr, bool) { return netip.Addr{}, false },
		start:   func(context.Context, string) (netip.Addr, error) { return netip.Addr{}, boom },
	}
	w := newWaker(t, s)
	_, err := w.Wake(t.Context(), "sb1", 3000)
	if !errors.Is(err, boom) {
		t.Fatalf("Wake = %v, want it to wrap %v", err, boom)
	}
	if outcome(true, err) != OutcomeError {
		t.Errorf("outcome = %s", outcome(true, err))
	}
}

func TestWakeStarterWithoutAddress(t *testing.T) {
	s := &fakeStarter{
		running: func(string) (netip.Addr, bool) { return netip.Addr{}, false },
		start:   func(context.Context, string) (netip.Addr, error) { return netip.Addr{}, nil },
	}
	w := newWaker(t, s)
	if _, err := w.Wake(t.Context(), "sb1", 0); err == nil {
		t.Fatal("Wake succeeded with no address to proxy to")
	}
}

func TestWakeInvalidPort(t *testing.T) {
	w := newWaker(t, newGatedStarter())
	for _, port := range []int{-1, 65536} {
		if _, err := w.Wake(t.Context(), "sb1", port); err == nil {
			t.Errorf("Wake(port %d) succeeded", port)
		}
	}
}

func TestWakeClose(t *testing.T) {
	s := newGatedStarter() // never opens the gate: Start ends with its context
	w := New(s)
	w.MemAvailable = plenty
	returned := make(chan error, 1)
	go func() {
		_, err := w.Wake(t.Context(), "sb1", 3000)
		returned <- err
	}()
	<-s.started
	w.Close() // returns only once the start goroutine has
	if err := <-returned; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wake during Close = %v, want ErrClosed", err)
	}
	if _, err := w.Wake(t.Context(), "sb2", 3000); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wake after Close = %v, want ErrClosed", err)
	}
	if n, p := w.flights(); n != 0 || p != 0 {
		t.Errorf("after Close: %d starts, %d probes left", n, p)
	}
}

func TestWakeMeasuresWithNow(t *testing.T) {
	s := newGatedStarter()
	s.up.Store(true)
	w := newWaker(t, s)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
	var took time.Duration
	w.Observe = func(_, _ string, d time.Duration) { took = d }
	if _, err := w.Wake(t.Context(), "sb1", 0); err != nil {
		t.Fatal(err)
	}
	if took != time.Second {
		t.Errorf("Observe got %s, want the 1s the injected clock moved", took)
	}
}

// Waking a paused sandbox is an unpause: its memory is held already, so a host short of
// memory and start slots all taken by cold starts do not hold it back; it is observed as
// "unpaused", not "started".
func TestWakeUnpauseSkipsAdmission(t *testing.T) {
	cold := newGatedStarter() // a cold start that holds the only slot until the gate opens
	var resumed atomic.Bool
	s := &fakeStarter{
		running: func(id string) (netip.Addr, bool) { return loopback, id == "warm" && resumed.Load() },
		paused:  func(id string) bool { return id == "warm" && !resumed.Load() },
		start: func(ctx context.Context, id string) (netip.Addr, error) {
			if id == "warm" {
				resumed.Store(true)
				return loopback, nil
			}
			return cold.start(ctx, id)
		},
	}
	w := newWaker(t, s)
	w.MaxStarts = 1
	defer close(cold.gate)
	go w.Wake(t.Context(), "cold", 0)
	<-cold.started
	w.MemAvailable = func() (uint64, error) { return 0, nil } // would refuse any start
	var outcomes []string
	w.Observe = func(_, o string, _ time.Duration) { outcomes = append(outcomes, o) }
	if _, err := w.Wake(t.Context(), "warm", 0); err != nil {
		t.Fatalf("Wake of a paused sandbox = %v", err)
	}
	if len(outcomes) != 1 || outcomes[0] != OutcomeUnpaused {
		t.Fatalf("outcomes %v, want [%s]", outcomes, OutcomeUnpaused)
	}
}
