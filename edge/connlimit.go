package edge

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The caps on what clients hold (issue 11: 14,000 connections that sent POST headers and
// no body took every descriptor of the process, and with them the admin API, SQLite and
// the Docker client). A client is an address: an IPv4 address, or an IPv6 /64, since one
// host is given a whole /64 and can pick a new address in it for every connection.
const (
	// defaultMaxConnsPerIP is Server.MaxConnsPerIP's default: well above the 6 connections
	// per host and 256 in all that a browser opens, and a NAT's worth of people.
	defaultMaxConnsPerIP = 256

	// lightClient: the last eighth of MaxConns is kept for clients holding fewer
	// connections than this, so that a few addresses filling the edge leave room for
	// everyone else's previews.
	lightClient = 8

	// refusalWriteTimeout bounds writing a refusal on a fresh connection. Its send buffer is
	// empty, so the write does not block, whatever the client does; the bound keeps the
	// accept loop safe if it ever did. It is long beside a scheduling delay: at 50 ms, a
	// loaded machine (CI) once descheduled the loop between setting it and writing, and
	// the refusal was lost.
	refusalWriteTimeout = time.Second
)

// ConnRoom is the most client connections a process allowed nofile open files can hold.
// A quarter of the descriptors, and at least 256, are kept for what is not the edge: the
// admin API and its streams, SQLite, the Docker client, the relay, wake's probes, log
// files. The rest is halved because each client connection may hold one backend
// connection (Server caps those at MaxConns too).
func ConnRoom(nofile uint64) int {
	reserve := max(nofile/4, 256)
	if nofile <= reserve {
		return 0
	}
	return int((nofile - reserve) / 2)
}

// MaxConnsFor is the default Server.MaxConns for a process allowed nofile open files:
// ConnRoom, and at most 8192, to bound memory as well: a connection held with a request
// body in flight costs about 50 KiB (its goroutines, buffers and backend connection;
// TestSlowClientFlood measures it), so 8192 of them about 400 MiB. Below 8 it returns 0:
// too few descriptors to serve.
func MaxConnsFor(nofile uint64) int {
	n := min(ConnRoom(nofile), 8192)
	if n < 8 {
		return 0
	}
	return n
}

// openFileLimit is the process's soft RLIMIT_NOFILE, or 1024 when it cannot be read.
func openFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	return lim.Cur
}

// clientOf is the address a connection's limits are counted under: an IPv4 address
// (IPv4-mapped IPv6 included), or the /64 of an IPv6 one. Anything else counts as one
// client, the zero Addr.
func clientOf(addr net.Addr) netip.Addr {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	case nil:
	default:
		ap, _ := netip.ParseAddrPort(a.String())
		ip = ap.Addr()
	}
	return clientKey(ip)
}

// clientOfRequest is clientOf for an http.Request's RemoteAddr.
func clientOfRequest(remoteAddr string) netip.Addr {
	ap, _ := netip.ParseAddrPort(remoteAddr)
	return clientKey(ap.Addr())
}

func clientKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// verdict is connLimits' answer to a new connection or stream.
type verdict uint8

const (
	admitted   verdict = iota
	tooMany            // this client holds its share: 429
	edgeFull           // every connection is taken: 503
	notCounted         // no caps: admitted, nothing to release
)

// connLimits counts the client connections of every listener the Server wrapped, in all
// and per client. It is safe for concurrent use.
type connLimits struct {
	max   int // connections in all; <= 0: no cap
	perIP int // connections (and HTTP/2 streams) of one client; <= 0: no cap
	spare int // the last spare of max are for light clients

	mu     sync.Mutex
	total  int                // connections
	byAddr map[netip.Addr]int // connections and streams per client; only clients holding some
}

func newConnLimits(max, perIP int) *connLimits {
	return &connLimits{max: max, perIP: perIP, spare: max / 8, byAddr: make(map[netip.Addr]int)}
}

// acquire counts a new connection (conn) or HTTP/2 stream of client a, or says why not.
// Streams count only toward the client's share: they hold no client descriptor, and their
// backend connections are capped apart.
func (l *connLimits) acquire(a netip.Addr, conn bool) verdict {
	if l.perIP <= 0 && (l.max <= 0 || !conn) {
		return notCounted // nothing caps it: no lock on the request path
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	held := l.byAddr[a]
	switch {
	case l.perIP > 0 && held >= l.perIP:
		return tooMany
	case conn && l.max > 0 && l.total >= l.max:
		return edgeFull
	case conn && l.max > 0 && l.total >= l.max-l.spare && held >= lightClient:
		return tooMany
	}
	l.byAddr[a] = held + 1
	if conn {
		l.total++
	}
	return admitted
}

// release uncounts what acquire admitted.
func (l *connLimits) release(a netip.Addr, conn bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.byAddr[a]; n <= 1 {
		delete(l.byAddr, a) // only clients holding something stay: the map cannot grow stale
	} else {
		l.byAddr[a] = n - 1
	}
	if conn {
		l.total--
	}
}

// open reports the connections counted now and the clients holding any.
func (l *connLimits) open() (conns, clients int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, len(l.byAddr)
}

// limitListener admits the connections of a listener under connLimits. A connection over
// a cap is accepted and closed at once, so that it never waits in the backlog holding the
// client's hopes: on a plain HTTP listener after a tiny answer (429 or 503) written straight
// on the socket, which a client reads unless its request arrived first and the close turned
// into a reset; on a TLS listener without a word, since a plain answer would be noise to a
// TLS client and a handshake costs more than the connection is worth.
type limitListener struct {
	net.Listener
	limits  *connLimits
	plain   bool
	limited func(limit string) // Server.limited: OnLimit as it is at the call
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a := clientOf(c.RemoteAddr())
		switch v := ll.limits.acquire(a, true); v {
		case admitted:
			return &limitedConn{Conn: c, limits: ll.limits, client: a}, nil
		case notCounted:
			return c, nil
		default:
			ll.refuse(c, v)
		}
	}
}

func (ll *limitListener) refuse(c net.Conn, v verdict) {
	limit, answer := "conns_per_ip", tooManyAnswer
	if v == edgeFull {
		limit, answer = "conns", edgeFullAnswer
	}
	ll.limited(limit)
	if ll.plain {
		c.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
		c.Write(answer)
	}
	c.Close()
}

// The refusals written on the raw connection, in the shape of the edge's JSON errors.
var (
	tooManyAnswer = rawAnswer(429, "Too Many Requests", 1, "too_many_connections",
		"this address holds too many connections to the preview edge; close some and try again")
	edgeFullAnswer = rawAnswer(503, "Service Unavailable", 5, "edge_busy",
		"the preview edge is at its connection limit; try again shortly")
)

func rawAnswer(status int, text string, retryAfter int, code, message string) []byte {
	body := `{"error":{"code":"` + code + `","message":"` + message + `"}}` + "\n"
	return []byte("HTTP/1.1 " + strconv.Itoa(status) + " " + text + "\r\n" +
		"Content-Type: application/json\r\n" +
		"Cache-Control: no-store\r\n" +
		"Retry-After: " + strconv.Itoa(retryAfter) + "\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// limitedConn is an admitted client connection: its first Close gives its place back.
// http.Server hands this same value to a Hijack, so an upgraded connection (WebSocket)
// keeps its place for its whole life.
type limitedConn struct {
	net.Conn
	limits *connLimits
	client netip.Addr
	once   sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.limits.release(c.client, true) })
	return err
}

// CloseWrite keeps http.Server's lingering close (a FIN, then a wait for the client's
// last bytes, so that an answer is not lost to a reset) reachable through the wrapper.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
