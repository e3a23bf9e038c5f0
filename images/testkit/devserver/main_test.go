package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
)

func get(t *testing.T, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	newMux().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

// checkGet checks that GET target answers status, and body when status is 200.
func checkGet(t *testing.T, target string, status int, body string) {
	t.Helper()
	rec := get(t, target)
	if rec.Code != status || (status == http.StatusOK && rec.Body.String() != body) {
		t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), status, body)
	}
}

func TestRoot(t *testing.T) {
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	rec := get(t, "/")
	if rec.Code != http.StatusOK || rec.Body.String() != "hello from "+hostname {
		t.Errorf("GET / = %d %q, want 200 %q", rec.Code, rec.Body.String(), "hello from "+hostname)
	}
	if rec := get(t, "/nope"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", rec.Code)
	}
}

func TestEcho(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		body    string
		header  map[string]string
		want    map[string]string // response headers; "" means absent
		wantLen int
	}{
		{
			name:   "json post",
			method: http.MethodPost,
			body:   `{"a":1}`,
			header: map[string]string{"Content-Type": "application/json"},
			want: map[string]string{
				"Content-Type":  "application/json",
				"X-Echo-Method": "POST",
				"X-Echo-Host":   "s-abc-3000.preview.localhost",
				"X-Echo-Path":   "/echo?x=1",
			},
		},
		{
			name:   "forwarded headers",
			method: http.MethodPut,
			body:   "plain",
			header: map[string]string{
				"X-Forwarded-Host":  "s-abc-3000.preview.example.com",
				"X-Forwarded-For":   "203.0.113.7",
				"X-Forwarded-Proto": "https",
			},
			want: map[string]string{
				"Content-Type":           "",
				"X-Echo-Method":          "PUT",
				"X-Echo-Forwarded-Host":  "s-abc-3000.preview.example.com",
				"X-Echo-Forwarded-For":   "203.0.113.7",
				"X-Echo-Forwarded-Proto": "https",
			},
		},
		{
			name:   "cookies and header names",
			method: http.MethodGet,
			header: map[string]string{"Cookie": "a=1; b=2", "X-Custom": "x"},
			want: map[string]string{
				"X-Echo-Cookie":       "a=1; b=2",
				"X-Echo-Header-Names": "Accept-Encoding,Cookie,User-Agent,X-Custom",
			},
		},
		{
			name:   "empty get",
			method: http.MethodGet,
			want:   map[string]string{"X-Echo-Method": "GET", "Content-Length": "0"},
		},
		{
			name:   "binary body larger than the server's write buffer",
			method: http.MethodPost,
			body:   strings.Repeat("\x00\xffab", 50_000),
			header: map[string]string{"Content-Type": "application/octet-stream"},
			want:   map[string]string{"Content-Length": "200000"},
		},
	}
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+"/echo?x=1", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "s-abc-3000.preview.localhost"
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || string(got) != tt.body {
				t.Errorf("status %d, body %d bytes equal=%v", resp.StatusCode, len(got), string(got) == tt.body)
			}
			for k, v := range tt.want {
				if g := resp.Header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
		})
	}
}

// TestSSEFlushesEachEvent reads the first event over a real connection while
// the second is a minute away: it can only arrive if it was flushed alone.
func TestSSEFlushesEachEvent(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/sse?n=2&ms=60000", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	if got := readEvent(t, bufio.NewReader(resp.Body)); got != "id: 1\ndata: tick 1\n" {
		t.Errorf("first event = %q", got)
	}
}

func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var ev strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading event: %v (so far %q)", err, ev.String())
		}
		if line == "\n" {
			return ev.String()
		}
		ev.WriteString(line)
	}
}

// flushRecorder hands each flushed chunk to the test, blocking the handler
// until the test takes it.
type flushRecorder struct {
	*httptest.ResponseRecorder
	sent    int
	flushes chan string
}

func (f *flushRecorder) Flush() {
	b := f.Body.String()
	f.flushes <- b[f.sent:]
	f.sent = len(b)
}

func TestSSESpacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder(), flushes: make(chan string)}
		done := make(chan struct{})
		start := time.Now()
		go func() {
			defer close(done)
			newMux().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/sse?n=3&ms=250", nil))
		}()
		if got := <-rec.flushes; got != "" {
			t.Errorf("header flush carried %q", got)
		}
		for i := 1; i <= 3; i++ {
			got := <-rec.flushes
			if want := "id: " + strconv.Itoa(i) + "\ndata: tick " + strconv.Itoa(i) + "\n\n"; got != want {
				t.Errorf("event %d = %q, want %q", i, got, want)
			}
			if at, want := time.Since(start), time.Duration(i-1)*250*time.Millisecond; at != want {
				t.Errorf("event %d at %v, want %v", i, at, want)
			}
		}
		<-done
	})
}

func TestSlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		rec := get(t, "/slow?ms=1500")
		if rec.Body.String() != "slow 1500" || time.Since(start) != 1500*time.Millisecond {
			t.Errorf("got %q after %v", rec.Body.String(), time.Since(start))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			newMux().ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/slow?ms=60000", nil))
		}()
		synctest.Wait()
		cancel()
		<-done
		if rec.Body.Len() != 0 || time.Since(start) != 0 {
			t.Errorf("canceled /slow wrote %q after %v", rec.Body.String(), time.Since(start))
		}
	})
}

func TestWebSocketEcho(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer conn.Close()
	msgs := []struct {
		typ  int
		data string
	}{
		{websocket.TextMessage, "hello"},
		{websocket.BinaryMessage, "\x00\x01\xfe\xff"},
		{websocket.TextMessage, strings.Repeat("big ", 40_000)},
	}
	for _, m := range msgs {
		if err := conn.WriteMessage(m.typ, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		typ, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ != m.typ || string(data) != m.data {
			t.Errorf("echo of type %d (%d bytes) = type %d (%d bytes)", m.typ, len(m.data), typ, len(data))
		}
	}
	if err := conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after close: %v, want a normal close", err)
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		status int
		n      int
	}{
		{"default is empty", "", http.StatusOK, 0},
		{"one", "?n=1", http.StatusOK, 1},
		{"several chunks", "?n=100000", http.StatusOK, 100000},
		{"negative", "?n=-1", http.StatusBadRequest, 0},
		{"not a number", "?n=lots", http.StatusBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(t, "/bytes"+tt.query)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			if tt.status != http.StatusOK {
				return
			}
			if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(tt.n) {
				t.Errorf("Content-Length %q, want %d", cl, tt.n)
			}
			if rec.Body.String() != strings.Repeat("x", tt.n) {
				t.Errorf("body is %d bytes, not %d x's", rec.Body.Len(), tt.n)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("DEVSERVER_TEST_SET", "some value")
	t.Setenv("DEVSERVER_TEST_EMPTY", "")
	tests := []struct {
		query  string
		status int
		body   string
	}{
		{"?k=DEVSERVER_TEST_SET", http.StatusOK, "some value"},
		{"?k=DEVSERVER_TEST_EMPTY", http.StatusOK, ""},
		{"?k=DEVSERVER_TEST_UNSET_VARIABLE", http.StatusNotFound, ""},
		{"", http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) { checkGet(t, "/env"+tt.query, tt.status, tt.body) })
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "workspace", "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "workspace", "app", "out.txt"), []byte("written by the agent\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"workspace/app/out.txt", http.StatusOK, "written by the agent\n"},
		{"./workspace/../workspace/app/out.txt", http.StatusOK, "written by the agent\n"},
		{"workspace/app/missing.txt", http.StatusNotFound, ""},
		{"workspace/app", http.StatusNotFound, ""},
		{"../outside", http.StatusForbidden, ""},
		{"", http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) { checkGet(t, "/file?path="+tt.path, tt.status, tt.body) })
	}
}

func TestListenAddr(t *testing.T) {
	tests := []struct {
		host, port, want string
	}{
		{"", "", ":3000"},
		{"", "4000", ":4000"},
		{"127.0.0.1", "", "127.0.0.1:3000"},
		{"::1", "8080", "[::1]:8080"},
		{"[::1]", "8080", "[::1]:8080"},
		{"0.0.0.0", "3000", "0.0.0.0:3000"},
	}
	for _, tt := range tests {
		env := map[string]string{"HOST": tt.host, "PORT": tt.port}
		if got := listenAddr(func(k string) string { return env[k] }); got != tt.want {
			t.Errorf("HOST=%q PORT=%q: %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}
}

// lineWriter hands each write to the test.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) { w <- string(p); return len(p), nil }

func TestRun(t *testing.T) {
	env := map[string]string{"HOST": "127.0.0.1", "PORT": "0"}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithCancel(t.Context())
	stderr := make(lineWriter, 1)
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, getenv, stderr) }()

	var line string
	select {
	case line = <-stderr:
	case err := <-errc:
		t.Fatalf("run: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "devserver listening on ")
	if !ok || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("start line %q", line)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "hello from ") {
		t.Errorf("GET / = %q", body)
	}

	// A second server on the same address must fail to listen.
	env2 := map[string]string{"HOST": "127.0.0.1", "PORT": strings.TrimPrefix(addr, "127.0.0.1:")}
	if err := run(t.Context(), func(k string) string { return env2[k] }, io.Discard); err == nil {
		t.Error("second run on a used port returned nil")
	}

	cancel()
	if err := <-errc; err != nil {
		t.Errorf("run after cancel: %v", err)
	}
}

// /count counts in the process's memory: one mux, one counter; a new process starts at 1.
func TestCountAndPid(t *testing.T) {
	mux := newMux()
	for want := 1; want <= 3; want++ {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/count", nil))
		if rec.Code != http.StatusOK || rec.Body.String() != strconv.Itoa(want) {
			t.Fatalf("GET /count #%d = %d %q", want, rec.Code, rec.Body.String())
		}
	}
	checkGet(t, "/count", http.StatusOK, "1") // another mux, as another process would be
	checkGet(t, "/pid", http.StatusOK, strconv.Itoa(os.Getpid()))
}

// With TLS_CERT and TLS_KEY, run serves HTTPS with that certificate.
func TestRunTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t, "devserver.test")
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	env := map[string]string{"HOST": "127.0.0.1", "PORT": "0",
		"TLS_CERT": filepath.Join(dir, "cert.pem"), "TLS_KEY": filepath.Join(dir, "key.pem")}
	ctx, cancel := context.WithCancel(t.Context())
	stderr := make(lineWriter, 1)
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, func(k string) string { return env[k] }, stderr) }()
	defer func() { cancel(); <-errc }()
	line := <-stderr
	addr := strings.TrimSpace(strings.TrimPrefix(line, "devserver listening on "))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "devserver.test"}}}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "hello from ") {
		t.Errorf("GET / over TLS = %q", body)
	}
}

// selfSigned makes a certificate for name that is its own CA.
func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
