package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Names of the test's internet. Each resolves (fakeResolver) to an address that the
// test's Dial sends to a loopback server: the proxy's checks see realistic addresses, and
// nothing leaves the machine. A dial to any other address fails, and is recorded.
const (
	publicAddr  = "93.184.215.14" // the upstream servers
	privateAddr = "10.9.8.7"      // also routed to the upstream, once a CIDR allows it
	hostAddr    = "192.0.2.1"     // one of "this host's" addresses (HostNetworks)
	sandboxNet  = "172.30.0.0/16" // a sandbox network (Blocked)
	bridgedNet  = "172.31.0.0/16" // a network bridged on "this host" (HostNetworks)
	bridgedAddr = "172.31.0.9"    // a container on it, also routed to the upstream
)

type harness struct {
	t     testing.TB
	p     *Proxy
	addr  string // the proxy's listener
	plain *httptest.Server
	tls   *httptest.Server

	mu     sync.Mutex
	dialed []string // upstream dials, as the proxy asked
}

func newHarness(t testing.TB, configure func(p *Proxy)) *harness {
	t.Helper()
	h := &harness{t: t}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bytes" {
			w.Write(make([]byte, 64<<10))
			return
		}
		fmt.Fprintf(w, "hello %s via %s", r.Host, r.Proto)
	})
	h.plain = httptest.NewServer(upstream)
	h.tls = httptest.NewTLSServer(upstream)
	t.Cleanup(h.plain.Close)
	t.Cleanup(h.tls.Close)
	h.p = New([]string{"operator.example"}, nil)
	h.p.Resolver = fakeResolver{
		"allowed.example": {publicAddr}, "other.example": {publicAddr}, "sub.wild.example": {publicAddr},
		"wild.example": {publicAddr}, "operator.example": {publicAddr}, "loop.example": {"127.0.0.1"},
		"private.example": {privateAddr}, "meta.example": {"169.254.169.254"}, "self.example": {hostAddr},
		"sandbox.example": {"172.30.0.5"}, "mixed.example": {"127.0.0.1", publicAddr},
		"bridged.example": {bridgedAddr},
	}
	h.p.Dial = h.dial
	h.p.Blocked = []netip.Prefix{netip.MustParsePrefix(sandboxNet)}
	h.p.HostNetworks = func() ([]netip.Addr, []netip.Prefix, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr(hostAddr)},
			[]netip.Prefix{netip.MustParsePrefix(bridgedNet)}, nil
	}
	if configure != nil {
		configure(h.p)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- h.p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return h
}

// dial sends the upstream addresses to the loopback servers: port 80 and the plain
// server's port to it, 443 and the TLS server's port to that one.
func (h *harness) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	h.mu.Lock()
	h.dialed = append(h.dialed, addr)
	h.mu.Unlock()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	if a := ap.Addr().String(); a != publicAddr && a != privateAddr && a != bridgedAddr {
		return nil, errors.New("test: no route to " + addr)
	}
	target := h.plain.Listener.Addr().String()
	if ap.Port() == 443 {
		target = h.tls.Listener.Addr().String()
	}
	return (&net.Dialer{}).DialContext(ctx, network, target)
}

func (h *harness) dials() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.dialed...)
}

// sandbox registers a sandbox at loopback source address src (127.0.0.x).
func (h *harness) sandbox(src, id, mode string, allow ...string) *client {
	h.p.SetPolicy(netip.MustParseAddr(src), id, mode, allow)
	return h.client(src)
}

// client makes requests through the proxy from source address src, as HTTP_PROXY and
// HTTPS_PROXY do (https:// by CONNECT, trusting the test server's certificate).
func (h *harness) client(src string) *client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	proxyURL := &url.URL{Scheme: "http", Host: h.addr}
	tr := &http.Transport{
		Proxy:           http.ProxyURL(proxyURL),
		DialContext:     d.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: h.tls.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "example.com"},
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &client{t: h.t, c: &http.Client{Transport: tr, Timeout: 10 * time.Second}, dialer: d, proxy: h.addr}
}

type client struct {
	t      testing.TB
	c      *http.Client
	dialer *net.Dialer
	proxy  string
}

// get returns the status and body of GET url.
func (c *client) get(url string) (int, string) {
	c.t.Helper()
	res, err := c.c.Get(url)
	if err != nil {
		c.t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// tunnelConn is a raw CONNECT tunnel: what the proxy answered, and the connection.
type tunnelConn struct {
	status int
	body   string
	conn   net.Conn
	r      *bufio.Reader
}

// connect sends CONNECT authority on a new connection and reads the proxy's answer. A
// connection the proxy closed has status 0.
func (c *client) connect(authority string) *tunnelConn {
	c.t.Helper()
	conn, err := c.dialer.Dial("tcp", c.proxy)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return &tunnelConn{conn: conn, r: br, body: err.Error()}
	}
	if res.StatusCode == http.StatusOK {
		return &tunnelConn{status: res.StatusCode, conn: conn, r: br} // the tunnel, no body
	}
	b, _ := io.ReadAll(res.Body)
	return &tunnelConn{status: res.StatusCode, body: string(b), conn: conn, r: br}
}

// get sends a plain GET through an open tunnel and returns the answer's body.
func (tc *tunnelConn) get(t testing.TB, host string) string {
	t.Helper()
	fmt.Fprintf(tc.conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	tc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer tc.conn.SetReadDeadline(time.Time{})
	res, err := http.ReadResponse(tc.r, nil)
	if err != nil {
		t.Fatalf("GET through the tunnel: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// closed waits until the proxy closes the tunnel.
func (tc *tunnelConn) closed(t testing.TB) {
	t.Helper()
	tc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, tc.r); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the tunnel is still open")
		}
	}
}

type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	list, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(list))
	for i, s := range list {
		out[i] = netip.MustParseAddr(s)
	}
	return out, nil
}

// rawRequest writes raw to the proxy from c's source and reads the answer.
func rawRequest(t testing.TB, c *client, raw string) (int, string) {
	t.Helper()
	conn, err := c.dialer.Dial("tcp", c.proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, raw)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
