package envd

import (
	"context"
	"strconv"
	"time"
)

// Keepalive pings: a stream sends a keepalive event after this long without another
// event, so proxies between the client and sandboxd do not cut a quiet stream. The client
// asks for its interval in seconds with Keepalive-Ping-Interval; it is held to
// [minKeepalive, maxKeepalive].
const (
	defaultKeepalive = 90 * time.Second
	minKeepalive     = time.Second
	maxKeepalive     = time.Hour
)

type keepalive struct {
	t *time.Ticker
	d time.Duration
}

// newKeepalive reads the interval from the header's value v.
func newKeepalive(v string) *keepalive {
	d := defaultKeepalive
	if n, err := strconv.Atoi(v); err == nil {
		d = min(max(time.Duration(n)*time.Second, minKeepalive), maxKeepalive)
	}
	return &keepalive{t: time.NewTicker(d), d: d}
}

func (k *keepalive) C() <-chan time.Time { return k.t.C }

// Reset restarts the interval after another event was sent.
func (k *keepalive) Reset() { k.t.Reset(k.d) }

func (k *keepalive) Stop() { k.t.Stop() }

// streamTimeout is what is left of a stream's deadline (the client's Connect-Timeout-Ms,
// which Connect puts on the context), or 0 for none. E2B kills a process when its start
// stream's timeout passes, and so does sandboxd.
func streamTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}
