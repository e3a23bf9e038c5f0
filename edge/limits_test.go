package edge

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestReadHeaderTimeoutCutsSlowClient(t *testing.T) {
	h := newHarness(t, func(s *Server) { s.ReadHeaderTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Half a request, never finished.
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: s-sb1-3000.preview."+testDomain+"\r\nX-Slow: ")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the edge kept a slow-header client past ReadHeaderTimeout")
	}
}

func TestHTTPServerLimits(t *testing.T) {
	s := NewServer(testDomain, NewTable(), &fakeWaker{}, nil)
	srv := s.HTTPServer(":0")
	if srv.ReadHeaderTimeout != 10*time.Second || srv.MaxHeaderBytes != 64<<10 || srv.IdleTimeout != 120*time.Second {
		t.Errorf("limits: header %v, bytes %d, idle %v", srv.ReadHeaderTimeout, srv.MaxHeaderBytes, srv.IdleTimeout)
	}
	if srv.ReadTimeout != 0 || srv.WriteTimeout != 0 {
		t.Error("ReadTimeout/WriteTimeout would cut WebSockets and SSE")
	}
}

// raiseFileLimit makes room for n more descriptors.
func raiseFileLimit(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	want := uint64(openFDs(t)) + n + 256
	if lim.Cur >= want {
		return
	}
	if lim.Max < want {
		t.Skipf("RLIMIT_NOFILE hard limit %d < %d", lim.Max, want)
	}
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
}

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

func TestManyIdleKeepAliveConns(t *testing.T) {
	const idle = 1000
	raiseFileLimit(t, 3*idle)
	h := newHarness(t, func(s *Server) { s.MaxConnsPerIP = -1 }) // every client here is 127.0.0.1
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	h.route("sb1", Running, port)
	before := openFDs(t)

	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idle {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatalf("after %d conns: %v", len(conns), err)
		}
		conns = append(conns, c)
		// One request each, then the connection idles in keep-alive.
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+previewHost("sb1", port)+"\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Close {
			t.Fatalf("status %d, close %v", res.StatusCode, res.Close)
		}
	}
	if grew := openFDs(t) - before; grew < 2*idle {
		t.Fatalf("descriptors grew by %d; want both ends of %d idle conns open", grew, idle)
	}

	client := &http.Client{Transport: h.clientTransport(), Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	res, err := client.Get(previewURL("sb1", port, "/live"))
	if err != nil {
		t.Fatalf("live request with %d idle conns: %v", idle, err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("live request: %d", res.StatusCode)
	}
}
