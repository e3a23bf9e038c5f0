package main

import (
	"fmt"
	"math"
	"strconv"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/edge"
)

// Issue 11: a client of the edge holds a bounded share of the process, and the process
// keeps descriptors for what is not the edge (the admin API, SQLite, the Docker client,
// the relay). The variables are in the README's configuration table.

// limitSettings are the variables of the edge's and the waker's limits.
func limitSettings(c *config) []setting {
	return []setting{
		{"SANDBOXD_EDGE_MAX_CONNS", "edge-max-conns", "auto", "client connections the edge holds at once, all listeners together (auto: from the open-file limit)", func(v string) error {
			if v == "auto" {
				c.EdgeMaxConns = 0
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("want auto or a whole number ≥ 1")
			}
			c.EdgeMaxConns = n
			return nil
		}},
		{"SANDBOXD_EDGE_MAX_CONNS_PER_IP", "edge-max-conns-per-ip", "256", "connections (and HTTP/2 requests in flight) of one client address, an IPv6 client's /64; 0: no cap", func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("want a whole number ≥ 0 (0: no cap)")
			}
			c.EdgeMaxConnsPerIP = n
			return nil
		}},
		{"SANDBOXD_EDGE_BODY_MIN_RATE", "edge-body-min-rate", "1KiB", "slowest pace of a request body, per second; a slower one is cut", func(v string) error {
			var n int64
			if err := sizeParser(&n)(v); err != nil || n < 1 || n > math.MaxInt32 {
				return fmt.Errorf("want a size per second like 1KiB, at least 1 byte")
			}
			c.EdgeBodyMinRate = n
			return nil
		}},
		{"SANDBOXD_EDGE_BODY_WINDOW", "edge-body-window", "10s", "the window the body pace is measured over: a body stalled this long is cut", durParser(&c.EdgeBodyWindow, 100*time.Millisecond)},
		{"SANDBOXD_EDGE_HEADER_TIMEOUT", "edge-header-timeout", "10s", "longest a client may take to send its request headers", durParser(&c.EdgeHeaderTimeout, 100*time.Millisecond)},
		{"SANDBOXD_WAKE_QUEUE_PER_SANDBOX", "wake-queue-per-sandbox", "256", "requests held for one sandbox to wake; more get 503 with Retry-After", intParser(&c.WakeQueuePerSandbox)},
		{"SANDBOXD_WAKE_QUEUE_MAX", "wake-queue-max", "4096", "requests held for sandboxes to wake, all together; more get 503 with Retry-After", intParser(&c.WakeQueueMax)},
	}
}

// resolveEdgeMaxConns turns "auto" into what the open-file limit allows, and refuses a
// number it does not allow: two descriptors per connection (the client's and its
// backend's) beyond a reserve for the rest of sandboxd (edge.MaxConnsFor).
func (c *config) resolveEdgeMaxConns() error {
	fits := edge.MaxConnsFor(c.OpenFiles)
	if fits == 0 {
		return fmt.Errorf("the open-file limit is %d, too low for sandboxd to serve: raise it to at least 1024 (LimitNOFILE= in the unit, ulimit -n in a shell)", c.OpenFiles)
	}
	if c.EdgeMaxConns == 0 {
		c.EdgeMaxConns = fits
		return nil
	}
	// The memory bound of auto (8192) is a default, not a ceiling: past it only the
	// descriptors count.
	if room := edge.ConnRoom(c.OpenFiles); c.EdgeMaxConns > room {
		return fmt.Errorf("SANDBOXD_EDGE_MAX_CONNS=%d: the open-file limit of %d leaves room for %d edge connections (each may hold a backend connection too, and a quarter of the limit is kept for the API, SQLite and Docker): lower it, or raise the limit (LimitNOFILE=)",
			c.EdgeMaxConns, c.OpenFiles, room)
	}
	return nil
}

// apiMaxConns caps the admin API's connections, SSE streams and terminals included, at
// half the descriptors edge.ConnRoom keeps for what is not the edge: an eighth of the
// open-file limit, at least 64. Past it new connections wait in the kernel's backlog to be
// accepted (netutil.LimitListener) rather than being refused: API clients are few and
// retry badly, and the API may face more than loopback, where anyone can connect before
// the token check.
func apiMaxConns(openFiles uint64) int {
	return int(max(openFiles/8, 64))
}

// raiseOpenFileLimit raises the soft RLIMIT_NOFILE to the hard limit, as Go's runtime has
// done at start since Go 1.19: done here too, so that the budget of edge connections
// stands on a limit sandboxd chose, whatever the runtime does. loadConfig reads the
// result.
func raiseOpenFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the open-file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raise the open-file limit to %d: %w", lim.Max, err)
		}
	}
	return nil
}
