package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sandboxd/sandboxd/edge/tlstest"
)

// tlsEdge is an edge serving preview hosts under domain on a loopback HTTP
// listener (wrapped by HTTPS.Redirect) and a loopback HTTPS listener, as
// cmd/sandboxd wires them, with one app "web" answering like the testkit
// devserver.
type tlsEdge struct {
	t         testing.TB
	domain    string
	https     *HTTPS
	httpAddr  string
	httpsAddr string
	webPort   int
	table     *Table // the route of "web" is public; a test may replace it
}

func newTLSEdge(t testing.TB, domain string, certs Certificates, log *slog.Logger, configure ...func(*HTTPS)) *tlsEdge {
	t.Helper()
	table := NewTable()
	waker := &fakeWaker{wake: func(_ context.Context, _ string, port int) (netip.AddrPort, error) {
		return netip.AddrPortFrom(loopback, uint16(port)), nil
	}}
	srv := NewServer(domain, table, waker, log)
	e := &tlsEdge{t: t, domain: domain, https: NewHTTPS(srv, certs), table: table}

	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.httpAddr, e.httpsAddr = httpLn.Addr().String(), httpsLn.Addr().String()
	e.https.Port = httpsLn.Addr().(*net.TCPAddr).Port
	for _, c := range configure {
		c(e.https)
	}
	httpSrv := srv.HTTPServer(e.httpAddr)
	httpSrv.Handler = e.https.Redirect(httpSrv.Handler)
	httpsSrv := e.https.Server(e.httpsAddr)
	served := make(chan error, 2)
	go func() { served <- httpSrv.Serve(httpLn) }()
	go func() { served <- httpsSrv.ServeTLS(httpsLn, "", "") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := errors.Join(httpSrv.Shutdown(ctx), httpsSrv.Shutdown(ctx)); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for range 2 {
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		}
	})

	app := httptest.NewServer(devserver("web"))
	t.Cleanup(app.Close)
	e.webPort = app.Listener.Addr().(*net.TCPAddr).Port
	table.Set(Route{ID: "web", State: Running, Addr: loopback, Ports: []int{e.webPort}})
	return e
}

// devserver answers like the testkit image's devserver: "/" says hello,
// "/ws" echoes WebSocket messages.
func devserver(id string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from "+id) })
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			t, msg, err := c.ReadMessage()
			if err != nil || c.WriteMessage(t, msg) != nil {
				return
			}
		}
	})
	return mux
}

// host is the preview host of the app.
func (e *tlsEdge) host() string {
	return "s-web-" + strconv.Itoa(e.webPort) + ".preview." + e.domain
}

// client connects to the edge's listeners whatever the URL's host, trusts
// roots only, and does not follow redirects.
func (e *tlsEdge) client(roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			to := e.httpAddr
			if strings.HasSuffix(addr, ":443") {
				to = e.httpsAddr
			}
			return (&net.Dialer{}).DialContext(ctx, "tcp", to)
		},
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// handshake connects to the HTTPS listener with SNI name and returns the
// server's leaf certificate, verified against roots.
func (e *tlsEdge) handshake(name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: roots}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", e.httpsAddr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// wss opens a WebSocket to the app over TLS and checks an echo.
func (e *tlsEdge) wss(roots *x509.CertPool) {
	e.t.Helper()
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", e.httpsAddr)
		},
		TLSClientConfig:  &tls.Config{RootCAs: roots},
		HandshakeTimeout: 10 * time.Second,
	}
	c, resp, err := d.Dial("wss://"+e.host()+"/ws", nil)
	if err != nil {
		e.t.Fatalf("wss dial: %v (%v)", err, resp)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("over tls")); err != nil {
		e.t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "over tls" {
		e.t.Fatalf("wss echo = %q, %v", got, err)
	}
}

// logSink is a slog handler's output that tests can wait on.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the lines holding every one of substrs.
func (l *logSink) lines(substrs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range substrs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// wait blocks until n lines hold every one of substrs, and returns them.
func (l *logSink) wait(t testing.TB, within time.Duration, n int, substrs ...string) []string {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		if got := l.lines(substrs...); len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %d log lines with %q within %s; log:\n%s", n, substrs, within, l)
		}
	}
}

func selfSigned(t testing.TB, names ...string) (certPEM, keyPEM []byte) {
	return tlstest.SelfSigned(t, names...)
}

func poolOf(t testing.TB, certPEM []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(certPEM) {
		t.Fatal("no certificate in PEM")
	}
	return p
}
