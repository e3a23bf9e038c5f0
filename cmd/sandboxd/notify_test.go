package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeNotifySocket is systemd's end of NOTIFY_SOCKET: a datagram socket whose messages
// arrive on msgs in order.
type fakeNotifySocket struct {
	addr string
	conn *net.UnixConn
	msgs chan string
}

func listenNotify(t testing.TB, addr string) *fakeNotifySocket {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeNotifySocket{addr: addr, conn: conn, msgs: make(chan string, 1024)}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(s.msgs)
				return
			}
			s.msgs <- string(buf[:n])
		}
	}()
	return s
}

// next returns the next message, or fails.
func (s *fakeNotifySocket) next(t testing.TB) string {
	t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			t.Fatal("notify socket closed")
		}
		return m
	case <-time.After(2 * time.Minute):
		t.Fatal("no sd_notify message within 2m")
		return ""
	}
}

// drain returns every message sent before now: it sends a marker of its own and reads up
// to it (one receiver, so datagrams arrive in the order they were sent).
func (s *fakeNotifySocket) drain(t testing.TB) []string {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("test-marker"))
	c.Close()
	var got []string
	for m := s.next(t); m != "test-marker"; m = s.next(t) {
		got = append(got, m)
	}
	return got
}

func notifyEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestNotifierMessagesReachTheSocket(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, addr string }{
		{"path", filepath.Join(t.TempDir(), "notify.sock")},
		{"abstract", "@sandboxd-test-" + strconv.Itoa(os.Getpid())},
	} {
		t.Run(c.name, func(t *testing.T) {
			sock := listenNotify(t, c.addr)
			n := newNotifier(notifyEnv(map[string]string{"NOTIFY_SOCKET": c.addr}), slog.New(slog.DiscardHandler))
			if n == nil {
				t.Fatal("no notifier with NOTIFY_SOCKET set")
			}
			n.Ready("serving")
			if m := sock.next(t); m != "READY=1\nSTATUS=serving" {
				t.Fatalf("ready: %q", m)
			}
			n.Reloading()
			m := sock.next(t)
			usec, ok := strings.CutPrefix(m, "RELOADING=1\nMONOTONIC_USEC=")
			if v, err := strconv.ParseInt(usec, 10, 64); !ok || err != nil || v <= 0 {
				t.Fatalf("reloading: %q", m)
			}
			n.Stopping("bye")
			if m := sock.next(t); m != "STOPPING=1\nSTATUS=bye" {
				t.Fatalf("stopping: %q", m)
			}
		})
	}
}

func TestNotifierEnvironment(t *testing.T) {
	t.Parallel()
	pid := strconv.Itoa(os.Getpid())
	cases := []struct {
		name     string
		env      map[string]string
		on       bool
		watchdog time.Duration
	}{
		{"not under systemd", nil, false, 0},
		{"socket only", map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify"}, true, 0},
		{"abstract socket", map[string]string{"NOTIFY_SOCKET": "@notify"}, true, 0},
		{"vsock is not for a host daemon", map[string]string{"NOTIFY_SOCKET": "vsock:2:1234"}, false, 0},
		{"watchdog", map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "30000000"}, true, 30 * time.Second},
		{"watchdog for this pid", map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": pid}, true, 2 * time.Second},
		{"watchdog for another pid", map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, true, 0},
		{"bad watchdog", map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "soon"}, true, 0},
		{"zero watchdog", map[string]string{"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "0"}, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := newNotifier(notifyEnv(c.env), slog.New(slog.DiscardHandler))
			if (n != nil) != c.on {
				t.Fatalf("notifier on = %v, want %v", n != nil, c.on)
			}
			if n == nil {
				// Every method of a nil notifier does nothing.
				n.Ready("x")
				n.Reloading()
				n.Stopping("x")
				if err := n.Watchdog(context.Background(), nil); err != nil {
					t.Fatal(err)
				}
				return
			}
			if n.watchdog != c.watchdog {
				t.Fatalf("watchdog = %s, want %s", n.watchdog, c.watchdog)
			}
		})
	}
}

// The watchdog pings every half WATCHDOG_USEC while the liveness check passes, skips the
// ping while it fails or hangs, and never pings after STOPPING=1.
func TestNotifyWatchdogLoop(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var sent []string
		took := func() []string {
			mu.Lock()
			defer mu.Unlock()
			got := sent
			sent = nil
			return got
		}
		n := &notifier{watchdog: 2 * time.Second, log: slog.New(slog.DiscardHandler), write: func(msg string) error {
			mu.Lock()
			sent = append(sent, msg)
			mu.Unlock()
			return nil
		}}
		var check func(context.Context) error
		var checkMu sync.Mutex
		setCheck := func(f func(context.Context) error) { checkMu.Lock(); check = f; checkMu.Unlock() }
		alive := func(ctx context.Context) error { checkMu.Lock(); f := check; checkMu.Unlock(); return f(ctx) }
		setCheck(func(context.Context) error { return nil })

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Watchdog(ctx, alive) }()
		expect := func(step string, want ...string) {
			t.Helper()
			synctest.Wait()
			got := took()
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("%s: sent %q, want %q", step, got, want)
			}
		}
		// The loop acts at whole seconds; the test looks in between, never at the same
		// instant as a tick or a deadline.
		expect("at once", "WATCHDOG=1")
		time.Sleep(1500 * time.Millisecond)
		expect("after half the timeout", "WATCHDOG=1")

		setCheck(func(context.Context) error { return errors.New("database is locked") })
		time.Sleep(time.Second)
		expect("check fails", "STATUS=liveness check failed: database is locked")

		var hung bool // the next check hangs past its deadline, the one after passes
		setCheck(func(ctx context.Context) error {
			if hung {
				return nil
			}
			hung = true
			<-ctx.Done()
			return ctx.Err()
		})
		time.Sleep(time.Second)
		expect("check hangs")
		time.Sleep(time.Second)
		expect("check hung, then passed", "STATUS=liveness check failed: context deadline exceeded", "WATCHDOG=1")

		n.Stopping("bye")
		expect("stopping", "STOPPING=1\nSTATUS=bye")
		time.Sleep(time.Second)
		expect("after stopping")

		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("Watchdog did not return after its context ended")
		}
	})
}

// Under a fake systemd: READY=1 once sandboxd serves, WATCHDOG=1 pings after it, and
// STOPPING=1 when it is told to stop, with no ping after that.
func TestNotifyReadyWatchdogStopping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sock := listenNotify(t, filepath.Join(t.TempDir(), "notify.sock"))
	e.vars["NOTIFY_SOCKET"] = sock.addr
	e.vars["WATCHDOG_USEC"] = "100000" // a ping every 50ms
	d := e.start()

	if m := sock.next(t); !strings.HasPrefix(m, "READY=1\nSTATUS=serving") {
		t.Fatalf("first message %q, want READY=1", m)
	}
	// READY=1 means the API answers.
	if code := call(t, "GET", d.API+"/healthz", nil, nil); code != 200 {
		t.Fatalf("healthz after READY: %d", code)
	}
	for i := 0; i < 2; i++ {
		if m := sock.next(t); m != "WATCHDOG=1" {
			t.Fatalf("message %q after READY, want WATCHDOG=1", m)
		}
	}
	if err := d.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	rest := sock.drain(t)
	i := 0
	for i < len(rest) && rest[i] == "WATCHDOG=1" {
		i++
	}
	if i != len(rest)-1 || !strings.HasPrefix(rest[i], "STOPPING=1\n") {
		t.Fatalf("messages after the pings: %q, want STOPPING=1 last and only pings before it", rest)
	}
}
