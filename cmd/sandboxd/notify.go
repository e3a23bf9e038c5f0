package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// notifier speaks systemd's sd_notify protocol (sd_notify(3)) over the datagram socket
// that NOTIFY_SOCKET names, so that a Type=notify unit knows when sandboxd serves, that it
// is alive, and when it stops or reloads. A nil *notifier (NOTIFY_SOCKET unset: not run
// by systemd) does nothing.
//
// sandboxd starts no processes of its own (containers are dockerd's, with the environment
// sandboxd gives them explicitly), so NOTIFY_SOCKET is not unset: nobody inherits it.
type notifier struct {
	// watchdog is WATCHDOG_USEC: systemd restarts the service when no WATCHDOG=1 arrives
	// within it. Zero: no watchdog.
	watchdog time.Duration
	// write sends one datagram; tests replace it.
	write func(msg string) error
	log   *slog.Logger

	mu       sync.Mutex // orders messages: no WATCHDOG=1 after STOPPING=1
	stopping bool
}

// newNotifier reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through getenv (run's,
// so in-process tests can set them). A value it cannot use is logged and leaves that part
// off: a broken notification channel must not stop sandboxd from serving.
func newNotifier(getenv func(string) string, log *slog.Logger) *notifier {
	sock := getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	if sock[0] != '/' && sock[0] != '@' {
		// systemd ≥ 254 may also pass vsock: addresses (to VMs); sandboxd runs on the host.
		log.Warn("NOTIFY_SOCKET is neither a path nor an abstract socket (@name); not notifying systemd", "NOTIFY_SOCKET", sock)
		return nil
	}
	// Go maps a leading '@' to Linux's abstract namespace (a leading NUL byte), as
	// systemd means it.
	addr := &net.UnixAddr{Name: sock, Net: "unixgram"}
	n := &notifier{log: log, write: func(msg string) error {
		c, err := net.DialUnix("unixgram", nil, addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(msg))
		return err
	}}
	if v := getenv("WATCHDOG_USEC"); v != "" {
		usec, err := strconv.ParseUint(v, 10, 63)
		pid := getenv("WATCHDOG_PID")
		switch {
		case err != nil || usec == 0:
			log.Warn("WATCHDOG_USEC is not a positive number of microseconds; not pinging the watchdog", "WATCHDOG_USEC", v)
		case pid != "" && pid != strconv.Itoa(os.Getpid()):
			// The watchdog is meant for another process (sd_watchdog_enabled(3)).
		default:
			n.watchdog = time.Duration(usec) * time.Microsecond
		}
	}
	return n
}

// send writes one notification; a failure is logged, never fatal.
func (n *notifier) send(msg string) {
	if err := n.write(msg); err != nil {
		n.log.Warn("sd_notify", "msg", oneLine(msg), "err", err)
	}
}

// Ready tells systemd that sandboxd serves: its listeners are open and the boot reconcile
// is done. systemd counts the start as complete from here.
func (n *notifier) Ready(status string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.send("READY=1\nSTATUS=" + status)
}

// Reloading tells systemd that a reload (SIGHUP) began; Ready ends it.
func (n *notifier) Reloading() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10))
}

// Stopping tells systemd that shutdown began. No watchdog ping follows it: systemd stops
// watching a stopping service, and a ping would only blur the order.
func (n *notifier) Stopping(status string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopping = true
	n.send("STOPPING=1\nSTATUS=" + status)
}

// Watchdog pings systemd's watchdog every half WATCHDOG_USEC (as sd_watchdog_enabled(3)
// advises) until ctx is done, each time only after alive answers within that half: a
// sandboxd whose database no longer answers goes unpinged, and systemd restarts it. It
// returns nil at once when there is no watchdog.
func (n *notifier) Watchdog(ctx context.Context, alive func(context.Context) error) error {
	if n == nil || n.watchdog <= 0 {
		return nil
	}
	every := n.watchdog / 2
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n.watchdogPass(ctx, every, alive)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// watchdogPass is one check and, when it passes, one ping.
func (n *notifier) watchdogPass(ctx context.Context, within time.Duration, alive func(context.Context) error) {
	cctx, cancel := context.WithTimeout(ctx, within)
	err := alive(cctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopping {
		return
	}
	if err != nil {
		// Skipping the ping is the point: systemd restarts a sandboxd that stays like this
		// for WatchdogSec.
		n.log.Error("watchdog: liveness check failed; not pinging systemd", "err", err)
		n.send("STATUS=liveness check failed: " + oneLine(err.Error()))
		return
	}
	n.send("WATCHDOG=1")
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd compares
// MONOTONIC_USEC with. The standard library keeps its monotonic reading private.
func monotonicUsec() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return ts.Nano() / 1e3
}
