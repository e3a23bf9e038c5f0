package egress

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// connCounter counts the proxy's connections, per source and in all.
type connCounter struct {
	mu    sync.Mutex
	per   map[netip.Addr]int
	total int
}

func (c *connCounter) acquire(ip netip.Addr, perMax, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= max || c.per[ip] >= perMax {
		return false
	}
	c.total++
	c.per[ip]++
	return true
}

func (c *connCounter) release(ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.per[ip]--; c.per[ip] <= 0 {
		delete(c.per, ip)
	}
}

// admitListener admits a connection only from a running sandbox, and only within the
// bounds; anything else is closed at once, before it costs a goroutine.
type admitListener struct {
	net.Listener
	p *Proxy
}

func (l *admitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := connAddr(c)
		pol := l.p.lookup(ip)
		if pol == nil {
			l.p.stats.total(false, netpolicy.ReasonUnknown)
			l.p.log.Debug("egress: connection from no running sandbox refused", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		if !l.p.conns.acquire(ip, l.p.maxConnsPerSandbox(), l.p.maxConns()) {
			l.p.stats.deny(pol.sandbox, "", netpolicy.ReasonLimit, l.p.now())
			l.refuse(c, fmt.Sprintf("too many connections through the egress proxy: sandbox %s may have %d at once, and sandboxd %d in all",
				pol.sandbox, l.p.maxConnsPerSandbox(), l.p.maxConns()))
			continue
		}
		return &admittedConn{Conn: c, release: func() { l.p.conns.release(ip) }}, nil
	}
}

// refuse answers 429 on a connection over the bounds, without waiting for its request: a
// fresh socket's send buffer takes the few bytes at once, and the deadline makes sure.
func (l *admitListener) refuse(c net.Conn, msg string) {
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	io.WriteString(c, fmt.Sprintf("HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s\n", len(msg)+1, msg))
	c.Close()
}

// admittedConn gives its slot back once, when closed (by the server, or by a tunnel).
type admittedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *admittedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes a tunnel's client side, when the underlying connection can.
func (c *admittedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func connAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return remoteAddr(c.RemoteAddr().String())
}

// Guard wraps a listener of sandboxd's (the edge, the admin and E2B APIs) so that it
// closes, as soon as it accepts it, a connection the proxy calls Restricted: a sandbox
// without open egress reaches none of sandboxd's services through its gateway.
func (p *Proxy) Guard(ln net.Listener) net.Listener { return &guardListener{Listener: ln, p: p} }

type guardListener struct {
	net.Listener
	p *Proxy
}

func (g *guardListener) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if ip := connAddr(c); ip.IsValid() && g.p.Restricted(ip) {
			g.p.log.Debug("egress: sandbox without open egress refused by a listener", "remote", c.RemoteAddr().String(), "listener", g.Addr().String())
			c.Close()
			continue
		}
		return c, nil
	}
}
