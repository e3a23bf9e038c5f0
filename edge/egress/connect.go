package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// serveConnect opens a tunnel to the CONNECT authority, when the policy allows it: the
// way HTTPS_PROXY takes https:// (npm, pip, git, curl, the agent CLIs), end to end
// encrypted, so the proxy sees the name asked for and no more.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request, src netip.Addr, pol *policy) {
	host, portStr, err := net.SplitHostPort(r.Host)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		p.refuse(w, pol, r.Host, &refusal{netpolicy.ReasonBad, fmt.Sprintf("CONNECT %q: want host:port, like registry.npmjs.org:443", r.Host)})
		return
	}
	addrs, name, ref, err := p.decide(r.Context(), pol, host)
	if ref != nil {
		p.refuse(w, pol, r.Host, ref)
		return
	}
	p.stats.allow(pol.sandbox, p.now())
	if err != nil {
		plain(w, http.StatusBadGateway, err.Error())
		return
	}
	up, addr, err := p.dialAny(r.Context(), addrs, port)
	if err != nil {
		plain(w, http.StatusBadGateway, fmt.Sprintf("cannot connect to %s: %v", r.Host, err))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		plain(w, http.StatusInternalServerError, "this connection cannot tunnel")
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	t := &tunnel{sandbox: pol.sandbox, name: name, addr: addr, client: c, upstream: up}
	if !p.tunnels.add(src, t) {
		t.close() // shutting down
		return
	}
	defer p.tunnels.remove(src, t)
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		t.close()
		return
	}
	// What the client sent right behind its CONNECT (a TLS hello, often) is already in
	// the server's buffer.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			t.close()
			return
		}
	}
	p.splice(t)
}

// dialAny connects to the first of addrs that answers.
func (p *Proxy) dialAny(ctx context.Context, addrs []netip.Addr, port int) (net.Conn, netip.Addr, error) {
	var errs []error
	for i, a := range addrs {
		if i == 4 {
			break
		}
		c, err := p.dial(ctx, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, a, nil
		}
		errs = append(errs, err)
	}
	return nil, netip.Addr{}, errors.Join(errs...)
}

func (p *Proxy) dial(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.dialTimeout())
	defer cancel()
	if p.Dial != nil {
		return p.Dial(ctx, "tcp", addr)
	}
	return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
}

// tunnel is one open CONNECT tunnel. close may be called from anywhere, any number of
// times.
type tunnel struct {
	sandbox  string
	name     string     // the name the tunnel was opened for; empty for an address
	addr     netip.Addr // the address it reached
	client   net.Conn
	upstream net.Conn
	once     sync.Once
}

func (t *tunnel) close() {
	t.once.Do(func() {
		t.client.Close()
		t.upstream.Close()
	})
}

// splice copies both ways until both sides are done, or nothing has moved either way for
// IdleTimeout, or the tunnel is closed. A side that ends is half-closed on the other, so
// a client that finished sending still gets the whole answer.
func (p *Proxy) splice(t *tunnel) {
	idle := p.idleTimeout()
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if pipe(t.upstream, t.client, &last, idle) != nil {
			t.close()
		}
		closeWrite(t.upstream)
	}()
	if pipe(t.client, t.upstream, &last, idle) != nil {
		t.close()
	}
	closeWrite(t.client)
	<-done
	t.close()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// pipe copies src to dst. A read that waits past idle ends the copy unless the other
// direction moved meanwhile (a download's request side is quiet for as long as the
// download runs). It returns nil at src's EOF.
func pipe(dst, src net.Conn, last *atomic.Int64, idle time.Duration) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		src.SetReadDeadline(time.Now().Add(idle))
		n, err := src.Read(buf)
		if n > 0 {
			last.Store(time.Now().UnixNano())
			dst.SetWriteDeadline(time.Now().Add(idle))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, last.Load())) < idle:
			// the other way is busy: wait on
		default:
			return err
		}
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// tunnelSet tracks open tunnels by source address: a policy change closes those it no
// longer allows, and Shutdown closes them all (http.Server forgets hijacked connections).
type tunnelSet struct {
	mu     sync.Mutex
	by     map[netip.Addr]map[*tunnel]struct{}
	closed bool
	wg     sync.WaitGroup
}

func (s *tunnelSet) add(src netip.Addr, t *tunnel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.by[src] == nil {
		s.by[src] = map[*tunnel]struct{}{}
	}
	s.by[src][t] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *tunnelSet) remove(src netip.Addr, t *tunnel) {
	s.mu.Lock()
	delete(s.by[src], t)
	if len(s.by[src]) == 0 {
		delete(s.by, src)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// cut closes the tunnels from src that drop says to.
func (s *tunnelSet) cut(src netip.Addr, drop func(*tunnel) bool) {
	s.mu.Lock()
	var list []*tunnel
	for t := range s.by[src] {
		if drop(t) {
			list = append(list, t)
		}
	}
	s.mu.Unlock()
	for _, t := range list {
		t.close()
	}
}

func (s *tunnelSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	var list []*tunnel
	for _, m := range s.by {
		for t := range m {
			list = append(list, t)
		}
	}
	s.mu.Unlock()
	for _, t := range list {
		t.close()
	}
}

func (s *tunnelSet) wait() { s.wg.Wait() }
