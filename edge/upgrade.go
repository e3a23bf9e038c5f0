package edge

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
)

// upgrades tracks the client connections ReverseProxy hijacked for a
// protocol switch (WebSocket): http.Server forgets a connection once it is
// hijacked, so nothing else would close them on shutdown.
type upgrades struct {
	pool copyPool

	mu     sync.Mutex
	conns  map[*upgradedConn]struct{}
	closed bool // after closeAll: new upgrades are refused

	closeOnce sync.Once // a second closeAll waits for the first
}

// add tracks c, or reports false after closeAll.
func (u *upgrades) add(c *upgradedConn) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return false
	}
	u.conns[c] = struct{}{}
	return true
}

func (u *upgrades) remove(c *upgradedConn) {
	u.mu.Lock()
	delete(u.conns, c)
	u.mu.Unlock()
}

func (u *upgrades) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}

// closeAll closes every upgraded connection and refuses new ones; it returns
// once they are closed, and a call while another runs waits for it. A
// WebSocket gets a Close frame first (see goingAway). Closing the client
// side ends ReverseProxy's copy, which then closes the backend.
func (u *upgrades) closeAll() {
	u.closeOnce.Do(func() {
		u.mu.Lock()
		u.closed = true
		conns := make([]*upgradedConn, 0, len(u.conns))
		for c := range u.conns {
			conns = append(conns, c)
		}
		u.mu.Unlock()
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() {
				if c.websocket {
					c.goingAway()
				}
				c.Close()
			})
		}
		wg.Wait()
	})
}

// closeWhere closes, without a Close frame, the connections match picks.
// A revoked preview token's WebSockets end this way (issue 13): the page
// sees an abnormal close, and its reconnect gets 401.
func (u *upgrades) closeWhere(match func(c *upgradedConn) bool) {
	u.mu.Lock()
	var conns []*upgradedConn
	for c := range u.conns {
		if match(c) {
			conns = append(conns, c)
		}
	}
	u.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// upgradeWriter wraps the ResponseWriter of an upgrade request so that the
// connection ReverseProxy hijacks is tracked. Flush and the rest stay
// reachable through Unwrap (http.ResponseController).
type upgradeWriter struct {
	http.ResponseWriter
	upgrades  *upgrades
	websocket bool // the request asks for "Upgrade: websocket"
	id        string
	port      int
}

func (w *upgradeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands ReverseProxy a tracked connection.
func (w *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	uc := &upgradedConn{Conn: c, upgrades: w.upgrades, websocket: w.websocket, id: w.id, port: w.port}
	if !w.upgrades.add(uc) {
		c.Close()
		return nil, nil, http.ErrServerClosed
	}
	return uc, brw, nil
}

// upgradedConn is a hijacked client connection. Its Close, by either copy
// direction or by closeAll, untracks it once. It has no CloseWrite on
// purpose: ReverseProxy then ends both directions as soon as one side
// closes, instead of keeping a half-closed socket open.
type upgradedConn struct {
	net.Conn
	upgrades *upgrades
	once     sync.Once
	id       string // the sandbox and port it reaches
	port     int

	// A WebSocket's writes to the client go through wsClientWriter, so that
	// closeAll can end it with a Close frame between two of the app's frames.
	websocket bool
	wmu       sync.Mutex
	frames    wsFrames // app→client frame boundaries, under wmu
	goneAway  bool     // goingAway ran: no more writes, under wmu
}

func (c *upgradedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.upgrades.remove(c) })
	return err
}

// ReadFrom copies the backend's bytes to the client (ReverseProxy's
// io.Copy(client, backend) lands here), with small resting buffers.
func (c *upgradedConn) ReadFrom(r io.Reader) (int64, error) {
	if c.websocket {
		return copyAdaptive((*wsClientWriter)(c), r, &c.upgrades.pool)
	}
	return copyAdaptive(c.Conn, r, &c.upgrades.pool)
}

// WriteTo copies the client's bytes to the backend (ReverseProxy's
// io.Copy(backend, client) lands here), with small resting buffers.
func (c *upgradedConn) WriteTo(w io.Writer) (int64, error) {
	return copyAdaptive(w, c.Conn, &c.upgrades.pool)
}
