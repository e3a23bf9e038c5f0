package edge

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// fakeCerts is a Certificates that becomes Ready when told.
type fakeCerts struct {
	ready chan struct{}
	once  sync.Once
	cert  *tls.Certificate // set before ready is closed
}

func (f *fakeCerts) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	select {
	case <-f.ready:
		return f.cert, nil
	default:
		return nil, errNoCertificate
	}
}
func (f *fakeCerts) Ready() <-chan struct{} { return f.ready }

func TestHTTPSFront(t *testing.T) {
	const domain = "front.test"
	certPEM, keyPEM := selfSigned(t, "*.preview."+domain, "preview."+domain)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certs := &fakeCerts{ready: make(chan struct{}), cert: &pair}
	e := newTLSEdge(t, domain, certs, nil, func(h *HTTPS) { h.HSTS = "max-age=60" })
	roots := poolOf(t, certPEM)
	c := e.client(roots)
	get := func(url, host string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s (Host %s): %v", url, host, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	t.Run("before the certificate", func(t *testing.T) {
		if _, err := e.handshake(e.host(), roots); err == nil || !strings.Contains(err.Error(), "internal error") {
			t.Errorf("handshake before the certificate: %v, want a TLS alert", err)
		}
		resp, body := get("http://"+e.host()+"/", e.host())
		if resp.StatusCode != 200 || body != "hello from web" {
			t.Errorf("HTTP preview before the certificate = %d %q, want it served", resp.StatusCode, body)
		}
	})

	certs.once.Do(func() { close(certs.ready) })

	t.Run("HTTPS with HTTP/2 and HSTS", func(t *testing.T) {
		resp, body := get("https://"+e.host()+"/", e.host())
		if resp.StatusCode != 200 || body != "hello from web" {
			t.Fatalf("HTTPS preview = %d %q", resp.StatusCode, body)
		}
		if resp.Proto != "HTTP/2.0" {
			t.Errorf("protocol %s, want HTTP/2.0", resp.Proto)
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=60" {
			t.Errorf("Strict-Transport-Security = %q", got)
		}
	})
	t.Run("WebSocket over TLS", func(t *testing.T) { e.wss(roots) })
	t.Run("HTTP preview redirects", func(t *testing.T) {
		resp, _ := get("http://"+e.host()+"/a/b?c=d", strings.ToUpper(e.host())+":8080")
		want := "https://" + e.host() + ":" + strings.Split(e.httpsAddr, ":")[1] + "/a/b?c=d"
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("HTTP preview = %d Location %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("HSTS on plain HTTP: %q", got)
		}
	})
	t.Run("redirect leaves the port out on 443", func(t *testing.T) {
		h := NewHTTPS(NewServer(domain, NewTable(), nil, nil), certs)
		h.Port = 443
		rec := httptest.NewRecorder()
		h.Redirect(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "http://"+e.host()+"/p", nil))
		if want := "https://" + e.host() + "/p"; rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != want {
			t.Errorf("%d Location %q, want 308 %q", rec.Code, rec.Header().Get("Location"), want)
		}
	})
	t.Run("other hosts are not redirected", func(t *testing.T) {
		for _, host := range []string{"preview." + domain, "example.com", "127.0.0.1"} {
			resp, _ := get("http://"+e.httpAddr+"/", host)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("Host %s = %d, want the edge's 404", host, resp.StatusCode)
			}
		}
	})
}

func TestCertFiles(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(certPEM, keyPEM []byte) {
		t.Helper()
		if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	serial := func(f *CertFiles) string {
		c, err := f.GetCertificate(&tls.ClientHelloInfo{ServerName: "anything"})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.String()
	}
	leafSerial := func(certPEM, keyPEM []byte) string {
		c, _ := tls.X509KeyPair(certPEM, keyPEM)
		return c.Leaf.SerialNumber.String()
	}

	if _, err := NewCertFiles(certPath, keyPath, nil); err == nil {
		t.Fatal("NewCertFiles without files: no error")
	}
	a1, a2 := selfSigned(t, "a.test")
	write(a1, a2)
	logs := newLogSink()
	f, err := NewCertFiles(certPath, keyPath, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Ready():
	default:
		t.Fatal("not Ready after loading")
	}
	if got := serial(f); got != leafSerial(a1, a2) {
		t.Fatalf("serial %s, want a's", got)
	}

	t.Run("Reload takes a new pair", func(t *testing.T) {
		b1, b2 := selfSigned(t, "b.test")
		write(b1, b2)
		if changed, err := f.Reload(); !changed || err != nil {
			t.Fatalf("Reload = %v, %v", changed, err)
		}
		if serial(f) != leafSerial(b1, b2) {
			t.Fatal("still serving the old certificate")
		}
		if changed, err := f.Reload(); changed || err != nil {
			t.Fatalf("Reload of the same files = %v, %v; want no change", changed, err)
		}
	})
	t.Run("a torn pair keeps the old certificate, logged once", func(t *testing.T) {
		before := serial(f)
		c1, _ := selfSigned(t, "c.test")
		_, otherKey := selfSigned(t, "d.test")
		write(c1, otherKey)
		f.check()
		f.check()
		if serial(f) != before {
			t.Fatal("a mismatched pair replaced the certificate")
		}
		if n := len(logs.lines("do not load")); n != 1 {
			t.Errorf("%d failure lines for one bad pair, want 1:\n%s", n, logs)
		}
	})
	t.Run("Run notices a change", func(t *testing.T) {
		f.Interval = 5 * time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // a failed wait below must not leave Run ticking
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		e1, e2 := selfSigned(t, "e.test")
		write(e1, e2)
		testutil.Eventually(t, 10*time.Second, "the new certificate is served", func() bool { return serial(f) == leafSerial(e1, e2) })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
	})
}

func TestACMEBackoff(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
		attempt  int
		want     time.Duration
	}{
		{"default first", 0, 0, 0, time.Minute},
		{"default doubles", 0, 0, 3, 8 * time.Minute},
		{"default cap", 0, 0, 20, time.Hour},
		{"custom", 100 * time.Millisecond, time.Second, 2, 400 * time.Millisecond},
		{"custom cap", 100 * time.Millisecond, time.Second, 5, time.Second},
		{"huge attempt does not overflow", time.Second, time.Hour, 1000, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &ACME{RetryMin: tt.min, RetryMax: tt.max}
			if got := a.backoff(tt.attempt); got != tt.want {
				t.Errorf("backoff(%d) = %s, want %s", tt.attempt, got, tt.want)
			}
		})
	}
}
