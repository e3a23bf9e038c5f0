package edge

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

func TestClientKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ addr, want string }{
		{"192.0.2.7:5000", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:5000", "192.0.2.7"}, // IPv4-mapped counts as the IPv4 client
		{"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::"},
		{"[2001:db8:1:2::1]:443", "2001:db8:1:2::"}, // same /64, same client
		{"[fe80::1%eth0]:80", "fe80::"},
		{"not an address", "invalid IP"},
	}
	for _, tc := range tests {
		if got := clientOfRequest(tc.addr).String(); got != tc.want {
			t.Errorf("client of %q = %s, want %s", tc.addr, got, tc.want)
		}
	}
	tcp := &net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}
	if got := clientOf(tcp).String(); got != "2001:db8:1:2::" {
		t.Errorf("client of %v = %s", tcp, got)
	}
}

func TestMaxConnsFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		nofile uint64
		want   int
	}{
		{256, 0},        // all reserve
		{1024, 384},     // (1024-256)/2
		{20000, 7500},   // (20000-5000)/2
		{1 << 20, 8192}, // memory bound
	}
	for _, tc := range tests {
		if got := MaxConnsFor(tc.nofile); got != tc.want {
			t.Errorf("MaxConnsFor(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
}

// dialFrom connects to addr from the loopback address src (127.0.0.0/8 is all
// loopback on Linux), so that one test can be several clients.
func dialFrom(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends one GET for host on c and reads the answer.
func get(t testing.TB, c net.Conn, host string) *http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// refusal reads the answer a refused connection gets before any request, and checks
// that the edge closed the connection after it.
func refusal(t testing.TB, c net.Conn) (status int, code, retryAfter string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("a refused connection: %v", err)
	}
	var body struct{ Error struct{ Code string } }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("refusal body: %v", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the refusal: %v, want EOF (closed)", err)
	}
	return res.StatusCode, body.Error.Code, res.Header.Get("Retry-After")
}

func TestMaxConnsPerIP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *Server) { s.MaxConnsPerIP = 3 })
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	h.route("sb1", Running, port)
	host := previewHost("sb1", port)

	held := make([]net.Conn, 3)
	for i := range held {
		held[i] = dialFrom(t, "127.0.0.2", h.addr)
		if res := get(t, held[i], host); res.StatusCode != 200 {
			t.Fatalf("connection %d: %d", i+1, res.StatusCode)
		}
	}
	status, code, retry := refusal(t, dialFrom(t, "127.0.0.2", h.addr))
	if status != 429 || code != "too_many_connections" || retry == "" {
		t.Fatalf("fourth connection: %d %s, Retry-After %q; want 429 too_many_connections with Retry-After", status, code, retry)
	}
	if res := get(t, dialFrom(t, "127.0.0.3", h.addr), host); res.StatusCode != 200 {
		t.Fatalf("another client: %d", res.StatusCode)
	}

	// A connection given back makes room.
	held[0].Close()
	testutil.Eventually(t, 10*time.Second, "the closed connection's place back", func() bool {
		conns, _ := h.edge.OpenConns()
		return conns == 3 // two held by .2, one by .3
	})
	if res := get(t, dialFrom(t, "127.0.0.2", h.addr), host); res.StatusCode != 200 {
		t.Fatalf("after a close: %d", res.StatusCode)
	}
}

func TestMaxConnsKeepsRoomForLightClients(t *testing.T) {
	t.Parallel()
	// 16 connections; the last 2 (an eighth) only for clients holding fewer than 8.
	h := newHarness(t, func(s *Server) { s.MaxConns, s.MaxConnsPerIP = 16, -1 })
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	h.route("sb1", Running, port)
	host := previewHost("sb1", port)

	// One heavy client takes 14: plain idle connections that never send a request.
	for range 14 {
		dialFrom(t, "127.0.0.2", h.addr)
	}
	testutil.Eventually(t, 10*time.Second, "14 connections counted", func() bool {
		conns, _ := h.edge.OpenConns()
		return conns == 14
	})
	if status, code, _ := refusal(t, dialFrom(t, "127.0.0.2", h.addr)); status != 429 || code != "too_many_connections" {
		t.Fatalf("the heavy client's 15th: %d %s; want 429", status, code)
	}
	// The light client still gets through, with the last two places.
	for i := range 2 {
		if res := get(t, dialFrom(t, "127.0.0.3", h.addr), host); res.StatusCode != 200 {
			t.Fatalf("light client's connection %d: %d", i+1, res.StatusCode)
		}
	}
	status, code, retry := refusal(t, dialFrom(t, "127.0.0.4", h.addr))
	if status != 503 || code != "edge_busy" || retry != "5" {
		t.Fatalf("a connection past MaxConns: %d %s, Retry-After %q; want 503 edge_busy, 5", status, code, retry)
	}
}

func TestUpgradedConnCountsForItsLife(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *Server) { s.MaxConnsPerIP = 1 })
	_, port := h.backend(echoWS(t))
	h.route("sb1", Running, port)

	c := h.dialWS(t, port)
	if conns, _ := h.edge.OpenConns(); conns != 1 {
		t.Fatalf("with a WebSocket open: %d connections counted, want 1", conns)
	}
	if status, _, _ := refusal(t, dialFrom(t, "127.0.0.1", h.addr)); status != 429 {
		t.Fatalf("a second connection while the WebSocket is open: %d, want 429", status)
	}
	c.WriteMessage(websocket.TextMessage, []byte("bye"))
	c.Close()
	testutil.Eventually(t, 10*time.Second, "the WebSocket's place back", func() bool {
		conns, _ := h.edge.OpenConns()
		return conns == 0
	})
	c2 := h.dialWS(t, port)
	c2.WriteMessage(websocket.TextMessage, []byte("again"))
	if _, msg, err := c2.ReadMessage(); err != nil || string(msg) != "again" {
		t.Fatalf("a WebSocket after the first closed: %q %v", msg, err)
	}
}

func TestBackendsCapClosesIdlePool(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *Server) { s.MaxConns = 2 })
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for i := 1; i <= 3; i++ {
		_, port := h.backend(ok)
		id := fmt.Sprintf("sb%d", i)
		h.route(id, Running, port)
		// One client connection at a time (each host has its own in the client's pool):
		// the cap of 2 is for the backends here, and a third client connection would be
		// refused at accept, before the client has sent anything.
		h.client.CloseIdleConnections()
		testutil.Eventually(t, 10*time.Second, "the client's connections closed", func() bool {
			conns, _ := h.edge.OpenConns()
			return conns == 0
		})
		res, err := h.client.Get(previewURL(id, port, "/"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("request to %s with the backend pool full of idle connections: %d", id, res.StatusCode)
		}
		if n := h.edge.backends.Load(); n > 2 {
			t.Fatalf("%d backend connections open, cap 2", n)
		}
	}
}

// An HTTP/2 client's streams in flight count toward its share, and a TLS listener closes
// a connection over a cap without answering.
func TestHTTP2StreamsPerIP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *Server) { s.MaxConnsPerIP = 3 })
	release := make(chan struct{})
	var inFlight atomic.Int32
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			inFlight.Add(1)
			<-release
		}
		io.WriteString(w, "ok")
	}))
	h.route("sb1", Running, port)

	ts := httptest.NewUnstartedServer(h.edge)
	ts.EnableHTTP2 = true
	ts.Listener = h.edge.TLSListener(ts.Listener)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before ts.Close, which waits for the requests
	client := ts.Client()
	do := func(path string) (int, error) {
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Host = previewHost("sb1", port)
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		io.Copy(io.Discard, res.Body)
		if res.ProtoMajor != 2 {
			return 0, fmt.Errorf("protocol %s, want HTTP/2", res.Proto)
		}
		return res.StatusCode, nil
	}
	// One connection and two streams in flight fill a share of 3.
	if code, err := do("/"); err != nil || code != 200 {
		t.Fatalf("first request: %d %v", code, err) // opens the one connection
	}
	results := make(chan error, 2)
	for range 2 {
		go func() {
			code, err := do("/hold")
			if err == nil && code != 200 {
				err = fmt.Errorf("status %d", code)
			}
			results <- err
		}()
	}
	testutil.Eventually(t, 10*time.Second, "two requests at the app", func() bool { return inFlight.Load() == 2 })
	if code, err := do("/"); err != nil || code != 429 {
		t.Fatalf("a third stream: %d %v; want 429", code, err)
	}
	unblock()
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("a stream within the share: %v", err)
		}
	}

	// A TLS connection over the cap is closed before the handshake completes.
	for range 2 {
		dialFrom(t, "127.0.0.1", ts.Listener.Addr().String())
	}
	testutil.Eventually(t, 10*time.Second, "three connections counted", func() bool {
		conns, _ := h.edge.OpenConns()
		return conns == 3
	})
	raw := dialFrom(t, "127.0.0.1", ts.Listener.Addr().String())
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := raw.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("a TLS connection over the cap read %d bytes, %v; want it closed", n, err)
	}
}

// delayedConn is a connection whose Write starts late, as when the accept loop's goroutine
// is descheduled between setting the write deadline and writing on a loaded machine: CI
// once saw a refusal lost that way, the connection closed with nothing written.
type delayedConn struct{ net.Conn }

func (c delayedConn) Write(p []byte) (int, error) {
	time.Sleep(150 * time.Millisecond)
	return c.Conn.Write(p)
}

func TestRefusalSurvivesALateWrite(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ll := &limitListener{plain: true, limited: func(string) {}}
	ll.refuse(delayedConn{server}, tooMany)
	if status, code, _ := refusal(t, client); status != 429 || code != "too_many_connections" {
		t.Fatalf("a refusal written late: %d %s", status, code)
	}
}
