package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
)

// Relay timing.
const (
	relayHeaderTimeout = 5 * time.Second
	relayDialTimeout   = time.Second
)

// relay joins connections from sandboxd's edge to servers listening on the
// container's loopback, which the edge cannot reach directly (a dev server
// bound to localhost), with the handshake of initproto: the relay dials
// 127.0.0.1:<port>, then [::1]:<port>, answers OK and copies bytes both ways
// until each side has closed, or answers ERR and closes. Only loopback
// addresses are ever dialed.
type relay struct {
	HeaderTimeout time.Duration // time to read the header; zero: 5s
	DialTimeout   time.Duration // per address; zero: 1s

	// Logf, when set, receives unexpected errors (accept failures).
	Logf func(format string, args ...any)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Serve accepts connections on ln until ctx is done, then closes ln and
// every connection and returns nil once all of them are finished. It
// returns an error when ln fails for good.
func (r *relay) Serve(ctx context.Context, ln net.Listener) error {
	self := 0
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		self = a.Port
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		r.closeAll()
	})
	defer stop()

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !retryableAccept(err) {
				r.closeAll()
				return fmt.Errorf("relay accept: %w", err)
			}
			// Out of descriptors, say: wait rather than spin, as
			// net/http's Server does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			r.logf("relay accept: %v; retrying in %s", err, delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
		if !r.track(c) {
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.untrack(c)
			r.handle(ctx, c, self)
		}()
	}
}

// handle runs the protocol on one client connection.
func (r *relay) handle(ctx context.Context, c net.Conn, self int) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(or(r.HeaderTimeout, relayHeaderTimeout)))
	port, err := readRelayHeader(c)
	switch {
	case errors.Is(err, initproto.ErrBadRelayRequest), errors.Is(err, initproto.ErrBadRelayPort):
		io.WriteString(c, initproto.RelayRefusal(err.Error()))
		return
	case err != nil: // too long, too slow or gone: not worth an answer
		return
	case port == self:
		io.WriteString(c, initproto.RelayRefusal("port is the relay's own"))
		return
	}
	b, err := r.dial(ctx, port)
	if err != nil {
		io.WriteString(c, initproto.RelayRefusal(err.Error()))
		return
	}
	defer b.Close()
	if !r.track(b) {
		return
	}
	defer r.untrack(b)
	if _, err := io.WriteString(c, initproto.RelayOK+"\n"); err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	join(c, b)
}

// dial connects to port on the container's loopback, IPv4 first.
func (r *relay) dial(ctx context.Context, port int) (net.Conn, error) {
	d := net.Dialer{Timeout: or(r.DialTimeout, relayDialTimeout), Control: loopbackOnly}
	var err error
	for _, host := range []string{"127.0.0.1", "::1"} {
		var c net.Conn
		c, err = d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("port %d: %s", port, dialReason(err))
}

// loopbackOnly is a net.Dialer Control that refuses any address but a
// loopback one: the relay must never become a way out of the container.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("relay: refusing to dial %s", address)
	}
	return nil
}

// dialReason is a short, single-line reason for a failed dial.
func dialReason(err error) string {
	var errno syscall.Errno
	var ne net.Error
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "unreachable"
}

// errHeaderTooLong is a header without a newline in its first
// initproto.RelayMaxRequest bytes.
var errHeaderTooLong = errors.New("relay header too long")

// readRelayHeader reads the request line and parses it with initproto. It
// reads one byte at a time so that bytes the client sends after the header
// stay in the socket for the backend.
func readRelayHeader(c io.Reader) (int, error) {
	var buf [initproto.RelayMaxRequest]byte
	n := 0
	for {
		if n == len(buf) {
			return 0, errHeaderTooLong
		}
		if _, err := io.ReadFull(c, buf[n:n+1]); err != nil {
			return 0, err
		}
		if buf[n] == '\n' {
			break
		}
		n++
	}
	return initproto.ParseRelayRequest(string(buf[:n]))
}

// join copies between a and b in both directions. When one side finishes
// sending, the other is told with a half-close and the copy the other way
// goes on; an error in either direction ends both.
func join(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pipe(b, a)
	}()
	pipe(a, b)
	wg.Wait()
}

// pipe copies src to dst, then half-closes dst.
func pipe(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		src.Close()
		dst.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	dst.Close()
}

func (r *relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	if r.conns == nil {
		r.conns = make(map[net.Conn]struct{})
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *relay) untrack(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
}

// closeAll closes every tracked connection and refuses new ones.
func (r *relay) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
}

func (r *relay) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// retryableAccept reports whether an Accept error may go away by itself.
func retryableAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// or returns d, or def when d is zero.
func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
