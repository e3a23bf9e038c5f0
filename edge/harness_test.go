package edge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sandboxd/sandboxd/wake"
)

var _ Waker = (*wake.Waker)(nil)

const testDomain = "preview.test"

var loopback = netip.MustParseAddr("127.0.0.1")

// fakeWaker is a Waker made of a function field; it counts its calls.
type fakeWaker struct {
	calls atomic.Int32
	wake  func(ctx context.Context, id string, port int) (netip.AddrPort, error)
}

func (f *fakeWaker) Wake(ctx context.Context, id string, port int) (netip.AddrPort, error) {
	f.calls.Add(1)
	return f.wake(ctx, id, port)
}

// recordLog is a slog.Handler that keeps the records at Info and above.
type recordLog struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *recordLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l *recordLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
	return nil
}
func (l *recordLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *recordLog) WithGroup(string) slog.Handler      { return l }
func (l *recordLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.records)
}

// harness is an edge serving on loopback, with a table, a fake waker that
// answers 127.0.0.1:<port> at once unless told otherwise, and a client
// whose every connection goes to the edge whatever the URL's host.
type harness struct {
	t      testing.TB
	table  *Table
	waker  *fakeWaker
	logs   *recordLog
	edge   *Server
	http   *http.Server
	addr   string // the edge's listener
	client *http.Client
}

func newHarness(t testing.TB, configure ...func(*Server)) *harness {
	t.Helper()
	h := &harness{t: t, table: NewTable(), logs: &recordLog{}}
	h.waker = &fakeWaker{wake: func(_ context.Context, _ string, port int) (netip.AddrPort, error) {
		return netip.AddrPortFrom(loopback, uint16(port)), nil
	}}
	h.edge = NewServer(testDomain, h.table, h.waker, slog.New(h.logs))
	for _, c := range configure {
		c(h.edge)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	h.http = h.edge.HTTPServer(h.addr)
	served := make(chan error, 1)
	go func() { served <- h.http.Serve(h.edge.Listener(ln)) }()
	h.client = &http.Client{Transport: h.clientTransport()}
	t.Cleanup(func() {
		h.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.http.Shutdown(ctx); err != nil {
			t.Errorf("edge shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("edge Serve: %v", err)
		}
	})
	return h
}

func (h *harness) dialEdge(ctx context.Context, _, _ string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, "tcp", h.addr)
}

func (h *harness) clientTransport() *http.Transport {
	return &http.Transport{DialContext: h.dialEdge, MaxIdleConnsPerHost: 100, DisableCompression: true}
}

// backend starts an app server on loopback and returns its port.
func (h *harness) backend(handler http.Handler, configure ...func(*http.Server)) (*httptest.Server, int) {
	h.t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	for _, c := range configure {
		c(srv.Config)
	}
	srv.Start()
	h.t.Cleanup(srv.Close)
	return srv, srv.Listener.Addr().(*net.TCPAddr).Port
}

// route declares sandbox id running on loopback with ports.
func (h *harness) route(id string, state State, ports ...int) *atomic.Int64 {
	var bytes atomic.Int64
	h.table.Set(Route{ID: id, State: state, Addr: loopback, Ports: ports, Bytes: &bytes})
	return &bytes
}

// url is the preview URL of id's port.
func previewURL(id string, port int, path string) string {
	return "http://" + previewHost(id, port) + path
}

func previewHost(id string, port int) string {
	return "s-" + id + "-" + strconv.Itoa(port) + ".preview." + testDomain
}

func (h *harness) wsDialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: h.dialEdge, HandshakeTimeout: 10 * time.Second}
}
