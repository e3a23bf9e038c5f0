package edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

func TestProxyGET(t *testing.T) {
	h := newHarness(t)
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App", "yes")
		io.WriteString(w, "hello from "+r.URL.Path+"?"+r.URL.RawQuery)
	}))
	h.route("sb1", Running, port)

	res, err := h.client.Get(previewURL("sb1", port, "/a/b?c=d"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "hello from /a/b?c=d" || res.Header.Get("X-App") != "yes" {
		t.Fatalf("got %d %q %v", res.StatusCode, body, res.Header)
	}
}

func TestProxyPOSTBodyIntact(t *testing.T) {
	h := newHarness(t)
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.New()
		n, _ := io.Copy(sum, r.Body)
		io.WriteString(w, r.Method+" "+strconv.FormatInt(n, 10)+" "+string(sum.Sum(nil)))
	}))
	h.route("sb1", Running, port)

	body := make([]byte, 3<<20+17)
	rand.Read(body)
	want := sha256.Sum256(body)
	res, err := h.client.Post(previewURL("sb1", port, "/upload"), "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(got) != "POST "+strconv.Itoa(len(body))+" "+string(want[:]) {
		t.Fatalf("backend saw %q", got)
	}
}

func TestHeldRequestKeepsMethodHeadersBody(t *testing.T) {
	h := newHarness(t)
	type seen struct {
		method, header, body string
	}
	seenc := make(chan seen, 1)
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seenc <- seen{r.Method, r.Header.Get("X-Token"), string(b)}
		w.WriteHeader(http.StatusCreated)
	}))
	h.route("sb1", Asleep, port)

	waking := make(chan struct{})
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // a failure below must not leave the request held
	h.waker.wake = func(ctx context.Context, id string, p int) (netip.AddrPort, error) {
		close(waking)
		select {
		case <-release:
		case <-ctx.Done():
			return netip.AddrPort{}, ctx.Err()
		}
		return netip.AddrPortFrom(loopback, uint16(p)), nil
	}

	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, previewURL("sb1", port, "/item"), strings.NewReader("the body"))
		req.Header.Set("X-Token", "t0k3n")
		res, err := h.client.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-waking
	select {
	case s := <-seenc:
		t.Fatalf("backend saw %v before the wake completed", s)
	default:
	}
	releaseOnce()
	res := <-done
	if res == nil {
		t.FailNow()
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", res.StatusCode)
	}
	if s := <-seenc; s != (seen{"PUT", "t0k3n", "the body"}) {
		t.Fatalf("backend saw %+v", s)
	}
}

func TestHostHeaderSeenByApp(t *testing.T) {
	tests := []struct {
		name       string
		hostHeader string
		want       func(port int) string
	}{
		{name: "preview host by default", want: func(port int) string { return previewHost("sb1", port) }},
		{name: "localhost", hostHeader: "localhost", want: func(port int) string { return "localhost:" + strconv.Itoa(port) }},
		{name: "verbatim", hostHeader: "app.internal", want: func(int) string { return "app.internal" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, r.Host+"|"+r.Header.Get("X-Forwarded-Host")+"|"+r.Header.Get("X-Forwarded-Proto"))
			}))
			h.table.Set(Route{ID: "sb1", State: Running, Addr: loopback, Ports: []int{port}, HostHeader: tc.hostHeader})
			res, err := h.client.Get(previewURL("sb1", port, "/"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			want := tc.want(port) + "|" + previewHost("sb1", port) + "|http"
			if string(b) != want {
				t.Fatalf("app saw %q, want %q", b, want)
			}
		})
	}
}

func TestSSEEventsArriveOneByOne(t *testing.T) {
	h := newHarness(t)
	next := make(chan struct{})
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := range 3 {
			io.WriteString(w, "data: tick "+strconv.Itoa(i)+"\n\n")
			rc.Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	h.route("sb1", Running, port)

	res, err := h.client.Get(previewURL("sb1", port, "/sse"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for i := range 3 {
		// The backend sends tick i+1 only after the test read tick i.
		line, err := br.ReadString('\n')
		if err != nil || line != "data: tick "+strconv.Itoa(i)+"\n" {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
		br.ReadString('\n')
		next <- struct{}{}
	}
}

func TestChunkedResponseStreams(t *testing.T) {
	h := newHarness(t)
	next := make(chan struct{})
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := range 3 {
			io.WriteString(w, strconv.Itoa(i)+"\n")
			rc.Flush()
			<-next
		}
	}))
	h.route("sb1", Running, port)
	res, err := h.client.Get(previewURL("sb1", port, "/stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for i := range 3 {
		if line, err := br.ReadString('\n'); err != nil || line != strconv.Itoa(i)+"\n" {
			t.Fatalf("chunk %d: %q, %v", i, line, err)
		}
		next <- struct{}{}
	}
}

func TestBytesCounted(t *testing.T) {
	h := newHarness(t)
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write(make([]byte, 10000))
	}))
	counter := h.route("sb1", Running, port)
	res, err := h.client.Post(previewURL("sb1", port, "/"), "text/plain", strings.NewReader(strings.Repeat("x", 5000)))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	// The last write to the backend is counted when it returns, which may trail the answer.
	testutil.Eventually(t, 10*time.Second, "the 15000 bytes of both bodies counted", func() bool { return counter.Load() >= 15000 })
	if n := counter.Load(); n > 16000 {
		t.Fatalf("counted %d bytes; want the 15000 of both bodies plus headers", n)
	}
}

func TestFastPathSkipsWake(t *testing.T) {
	h := newHarness(t)
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	h.route("sb1", Running, port)
	get := func() {
		t.Helper()
		res, err := h.client.Get(previewURL("sb1", port, "/"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	get()
	get()
	get()
	if n := h.waker.calls.Load(); n != 1 {
		t.Fatalf("Wake called %d times; want once, for the first request", n)
	}
	// A route set again with the same backend keeps what was learned.
	h.route("sb1", Running, port)
	get()
	if n := h.waker.calls.Load(); n != 1 {
		t.Fatalf("Wake called %d times after an unchanged Set", n)
	}
	// A route that stopped and started again must be probed again.
	h.route("sb1", Asleep, port)
	h.route("sb1", Running, port)
	get()
	if n := h.waker.calls.Load(); n != 2 {
		t.Fatalf("Wake called %d times after a restart, want 2", n)
	}
}

func TestPooledConnsNotReusedAcrossRestart(t *testing.T) {
	h := newHarness(t)
	var conns atomic.Int32
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(s *http.Server) {
		s.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
	})
	get := func() {
		t.Helper()
		res, err := h.client.Get(previewURL("sb1", port, "/"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	h.route("sb1", Running, port)
	get()
	get()
	if n := conns.Load(); n != 1 {
		t.Fatalf("backend saw %d connections for two requests, want 1 (keep-alive)", n)
	}
	h.route("sb1", Asleep, port)
	h.route("sb1", Running, port) // same IP: a new container may have it
	get()
	if n := conns.Load(); n != 2 {
		t.Fatalf("backend saw %d connections, want a new one after the restart", n)
	}
}

func TestDialErrorRetriesThroughWake(t *testing.T) {
	h := newHarness(t)
	old, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "old") }))
	h.route("sb1", Running, port)
	res, err := h.client.Get(previewURL("sb1", port, "/"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	// The app dies behind the table's back and comes back elsewhere.
	old.Close()
	_, newPort := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "new") }))
	h.waker.wake = func(context.Context, string, int) (netip.AddrPort, error) {
		return netip.AddrPortFrom(loopback, uint16(newPort)), nil
	}
	res, err = h.client.Get(previewURL("sb1", port, "/"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "new" || h.waker.calls.Load() != 2 {
		t.Fatalf("got %q after %d wakes", b, h.waker.calls.Load())
	}
}

// Issue 14: Node's servers close a keep-alive connection idle for 5s, and a request sent
// just as one closes fails; the Transport retries only requests it can replay, so a POST
// would get a 502. The edge must drop idle connections before Node does.
func TestIdleBackendConnectionsCloseBeforeNodes(t *testing.T) {
	t.Parallel()
	const nodeKeepAlive = 5 * time.Second // http.Server.keepAliveTimeout's default
	s := NewServer(testDomain, NewTable(), nil, nil)
	if got := s.transport.IdleConnTimeout; got <= 0 || got >= nodeKeepAlive {
		t.Fatalf("idle backend connections live %s; Node closes them after %s", got, nodeKeepAlive)
	}
	if got := s.transport.MaxIdleConnsPerHost; got < 64 {
		t.Fatalf("%d idle connections per sandbox port: a burst of 64 requests would redial", got)
	}
}
