package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/gorilla/websocket"
	"github.com/libdns/cloudflare"
	"github.com/libdns/libdns"
	"github.com/sandboxd/sandboxd/edge/tlstest"
	"github.com/sandboxd/sandboxd/internal/testutil"
)

func TestTLSConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	rootPEM, _ := tlstest.SelfSigned(t, "ca.test")
	os.WriteFile(root, rootPEM, 0o644)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o644)
	acme := map[string]string{
		"SANDBOXD_TLS": "acme", "PREVIEW_DOMAIN": "example.com",
		"SANDBOXD_ACME_EMAIL": "ops@example.com", "CLOUDFLARE_API_TOKEN": "tok",
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{"SANDBOXD_DATA_DIR": dir}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string // substring; empty: no error
		check   func(t *testing.T, c *tlsConfig)
	}{
		{"off by default", with(nil), nil, "", func(t *testing.T, c *tlsConfig) {
			if c.Mode != "off" {
				t.Errorf("mode %q", c.Mode)
			}
		}},
		{"unknown mode", with(nil, "SANDBOXD_TLS", "on"), nil, "SANDBOXD_TLS=", nil},
		{"acme defaults", with(acme), nil, "", func(t *testing.T, c *tlsConfig) {
			if c.ACMECA != certmagic.LetsEncryptProductionCA || c.DNSProvider != "cloudflare" || c.ACMERetry != time.Minute || c.ACMERoots != nil {
				t.Errorf("%+v", c)
			}
		}},
		{"acme staging by name", with(acme, "SANDBOXD_ACME_CA", "staging"), nil, "", func(t *testing.T, c *tlsConfig) {
			if c.ACMECA != certmagic.LetsEncryptStagingCA {
				t.Errorf("CA %q", c.ACMECA)
			}
		}},
		{"acme CA by URL, with a root", with(acme, "SANDBOXD_ACME_CA", "https://127.0.0.1:14000/dir", "SANDBOXD_ACME_CA_ROOT", root), nil, "", func(t *testing.T, c *tlsConfig) {
			if c.ACMECA != "https://127.0.0.1:14000/dir" || c.ACMERoots == nil {
				t.Errorf("%+v", c)
			}
		}},
		{"acme by flags", with(nil, "PREVIEW_DOMAIN", "example.com"), []string{"--tls=acme", "--acme-email=a@b.c", "--cloudflare-api-token=x", "--hsts=max-age=60; includeSubDomains"}, "", func(t *testing.T, c *tlsConfig) {
			if c.Mode != "acme" || c.CloudflareToken != "x" || c.HSTS != "max-age=60; includeSubDomains" {
				t.Errorf("%+v", c)
			}
		}},
		{"acme resolvers", with(acme, "SANDBOXD_DNS_RESOLVERS", "1.1.1.1, 127.0.0.1:5353,[::1]:53,ns.example.com"), nil, "", func(t *testing.T, c *tlsConfig) {
			want := []string{"1.1.1.1:53", "127.0.0.1:5353", "[::1]:53", "ns.example.com:53"}
			if strings.Join(c.DNSResolvers, " ") != strings.Join(want, " ") {
				t.Errorf("resolvers %q, want %q", c.DNSResolvers, want)
			}
		}},
		{"acme without email", with(acme, "SANDBOXD_ACME_EMAIL", ""), nil, "SANDBOXD_ACME_EMAIL", nil},
		{"acme without token", with(acme, "CLOUDFLARE_API_TOKEN", ""), nil, "CLOUDFLARE_API_TOKEN", nil},
		{"acme on localhost", with(acme, "PREVIEW_DOMAIN", "localhost"), nil, "PREVIEW_DOMAIN", nil},
		{"acme http CA", with(acme, "SANDBOXD_ACME_CA", "http://ca.example.com/dir"), nil, "SANDBOXD_ACME_CA=", nil},
		{"acme CA root missing", with(acme, "SANDBOXD_ACME_CA_ROOT", filepath.Join(dir, "nope.pem")), nil, "SANDBOXD_ACME_CA_ROOT", nil},
		{"acme CA root not PEM", with(acme, "SANDBOXD_ACME_CA_ROOT", notPEM), nil, "SANDBOXD_ACME_CA_ROOT", nil},
		{"acme other provider", with(acme, "SANDBOXD_DNS_PROVIDER", "route53"), nil, "SANDBOXD_DNS_PROVIDER=", nil},
		{"bad resolver", with(acme, "SANDBOXD_DNS_RESOLVERS", "1.1.1.1:99999"), nil, "SANDBOXD_DNS_RESOLVERS=", nil},
		{"bad retry", with(acme, "SANDBOXD_ACME_RETRY", "soon"), nil, "SANDBOXD_ACME_RETRY=", nil},
		{"bad HSTS", with(nil, "SANDBOXD_HSTS", "1 year"), nil, "SANDBOXD_HSTS=", nil},
		{"files without paths", with(nil, "SANDBOXD_TLS", "files", "SANDBOXD_TLS_CERT", "/x.pem"), nil, "SANDBOXD_TLS_KEY", nil},
		{"files", with(nil, "SANDBOXD_TLS", "files", "SANDBOXD_TLS_CERT", "/c.pem", "SANDBOXD_TLS_KEY", "/k.pem"), nil, "", func(t *testing.T, c *tlsConfig) {
			if c.CertFile != "/c.pem" || c.KeyFile != "/k.pem" {
				t.Errorf("%+v", c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, &cfg.TLS)
			}
		})
	}
}

// roundTripFunc is an HTTP client made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// The Cloudflare provider is built from the environment: its token reaches the API's
// Authorization header. The request is answered here; nothing leaves the process.
func TestCloudflareProviderFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SANDBOXD_DATA_DIR": t.TempDir(), "SANDBOXD_TLS": "acme", "PREVIEW_DOMAIN": "example.com",
		"SANDBOXD_ACME_EMAIL": "ops@example.com", "CLOUDFLARE_API_TOKEN": "cf-secret-token"}
	cfg, err := loadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dnsProvider(&cfg.TLS)
	if err != nil {
		t.Fatal(err)
	}
	cf, ok := p.(*cloudflare.Provider)
	if !ok {
		t.Fatalf("provider is %T, want *cloudflare.Provider", p)
	}
	if cf.APIToken != "cf-secret-token" || cf.ZoneToken != "" {
		t.Fatalf("provider %+v", cf)
	}
	var seen *http.Request
	cf.HTTPClient = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"success":true,"errors":[],"result":[]}`))}, nil
	})
	_, err = cf.AppendRecords(context.Background(), "example.com.", []libdns.Record{libdns.TXT{Name: "_acme-challenge.preview", Text: "x"}})
	if err == nil || !strings.Contains(err.Error(), "expected 1 zone") {
		t.Errorf("AppendRecords with no zone = %v", err)
	}
	if seen == nil || seen.URL.Host != "api.cloudflare.com" || seen.Header.Get("Authorization") != "Bearer cf-secret-token" {
		t.Fatalf("request %v", seen)
	}
	// certmagic names zones fully qualified, and the provider passes that on.
	if got := seen.URL.Query().Get("name"); got != "example.com." {
		t.Errorf("zone looked up as %q", got)
	}
}

// acmeStack is what an ACME sandboxd talks to in a test: Pebble, a DNS server for the
// zone, and Cloudflare's API (a fake, reached through a proxy on loopback).
type acmeStack struct {
	domain string
	dns    *tlstest.DNS
	pebble *tlstest.Pebble
	cf     *tlstest.Cloudflare
}

func newACMEStack(t *testing.T, domain, token string) *acmeStack {
	dns := tlstest.NewDNS(t, domain)
	return &acmeStack{domain: domain, dns: dns, pebble: tlstest.NewPebble(t, dns.Addr, 0), cf: tlstest.NewCloudflare(t, dns, token)}
}

// vars is the environment of a sandboxd child that uses the stack with token. The real
// Cloudflare provider reaches the fake through HTTPS_PROXY and trusts it by
// SSL_CERT_FILE; Pebble's directory is on loopback, which is never proxied.
func (s *acmeStack) vars(token string, extra ...string) map[string]string {
	m := map[string]string{
		"SANDBOXD_TLS":           "acme",
		"SANDBOXD_HTTPS_BIND":    "127.0.0.1:0",
		"PREVIEW_DOMAIN":         s.domain,
		"SANDBOXD_ACME_EMAIL":    "ops@" + s.domain,
		"SANDBOXD_ACME_CA":       s.pebble.Directory,
		"SANDBOXD_ACME_CA_ROOT":  s.pebble.RootFile,
		"SANDBOXD_DNS_RESOLVERS": s.dns.Addr,
		"CLOUDFLARE_API_TOKEN":   token,
		"HTTPS_PROXY":            s.cf.ProxyURL,
		"SSL_CERT_FILE":          s.cf.RootFile,
	}
	for i := 0; i < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// httpsAddr reads the HTTPS address from d's "serving" line.
func httpsAddr(t *testing.T, d *daemon) string {
	t.Helper()
	for _, line := range strings.Split(d.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"serving"`) {
			var v struct{ HTTPS string }
			if err := json.Unmarshal([]byte(line), &v); err != nil || v.HTTPS == "" {
				t.Fatalf("serving line %q names no https address (%v)", line, err)
			}
			return v.HTTPS
		}
	}
	t.Fatalf("no serving line:\n%s", d.logs)
	return ""
}

// logged waits until d has logged n lines holding every one of substrs.
func logged(t *testing.T, d *daemon, within time.Duration, n int, substrs ...string) []string {
	t.Helper()
	var got []string
	testutil.Eventually(t, within, fmt.Sprintf("%d log lines with %q", n, substrs), func() bool {
		got = got[:0]
		for _, line := range strings.Split(d.logs.String(), "\n") {
			ok := true
			for _, s := range substrs {
				ok = ok && strings.Contains(line, s)
			}
			if ok {
				got = append(got, line)
			}
		}
		return len(got) >= n
	})
	return got
}

// tlsClient sends every request to addr, trusting roots only, without following
// redirects.
func tlsClient(t *testing.T, addr string, roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 90 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func handshake(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: roots, InsecureSkipVerify: roots == nil}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// The production path end to end: sandboxd obtains a wildcard certificate from an ACME CA
// through the Cloudflare provider, and a sandbox's preview is served over HTTPS with it,
// WebSockets included, while plain HTTP redirects.
func TestHTTPSPreviewACME(t *testing.T) {
	e := newEnv(t)
	const token = "cf-token-dns-edit"
	s := newACMEStack(t, "sbx.test", token)
	p := e.startProcess(s.vars(token, "SANDBOXD_HSTS", "max-age=600"))
	addr := httpsAddr(t, p.daemon)
	_, port, _ := net.SplitHostPort(addr)
	sb := mustCreate(t, p.daemon, map[string]any{"ports": []int{3000}})
	host := fmt.Sprintf("s-%s-3000.preview.%s", sb.ID, s.domain)
	if want := "https://" + host + ":" + port; sb.PreviewURLs["3000"] != want {
		t.Errorf("preview url %q, want %q", sb.PreviewURLs["3000"], want)
	}
	logged(t, p.daemon, 2*time.Minute, 1, "preview certificate ready")
	roots := s.pebble.IssuerRoots()

	t.Run("wildcard certificate", func(t *testing.T) {
		leaf, err := handshake(addr, host, roots)
		if err != nil {
			t.Fatalf("handshake trusting Pebble's root only: %v", err)
		}
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "*.preview."+s.domain {
			t.Errorf("certificate for %v", leaf.DNSNames)
		}
	})
	t.Run("GET over HTTPS", func(t *testing.T) {
		resp, err := tlsClient(t, addr, roots).Get("https://" + host + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "hello from "+sb.ID {
			t.Fatalf("GET = %d %q", resp.StatusCode, body)
		}
		if resp.Proto != "HTTP/2.0" || resp.Header.Get("Strict-Transport-Security") != "max-age=600" {
			t.Errorf("proto %s, HSTS %q", resp.Proto, resp.Header.Get("Strict-Transport-Security"))
		}
	})
	t.Run("wss echo", func(t *testing.T) {
		d := websocket.Dialer{
			NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig:  &tls.Config{RootCAs: roots},
			HandshakeTimeout: 90 * time.Second,
		}
		c, resp, err := d.Dial("wss://"+host+"/ws", nil)
		if err != nil {
			t.Fatalf("wss dial: %v (%v)", err, resp)
		}
		defer c.Close()
		for i := range 3 {
			wsEcho(t, c, fmt.Sprintf("tls frame %d", i))
		}
	})
	t.Run("HTTP redirects to HTTPS", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+host+"/echo?x=1", strings.NewReader("body"))
		resp, err := tlsClient(t, p.HTTP, nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "https://" + host + ":" + port + "/echo?x=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("HTTP = %d Location %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	})
}

// A DNS provider that fails (here Cloudflare refusing the token): the cause is logged, the
// attempt retried, and previews keep being served over plain HTTP.
func TestHTTPSIssuanceFailureKeepsHTTP(t *testing.T) {
	e := newEnv(t)
	s := newACMEStack(t, "fail.test", "the-right-token")
	p := e.startProcess(s.vars("a-token-without-dns-edit", "SANDBOXD_ACME_RETRY", "100ms"))
	addr := httpsAddr(t, p.daemon)
	sb := mustCreate(t, p.daemon, map[string]any{"ports": []int{3000}})
	host := fmt.Sprintf("s-%s-3000.preview.%s", sb.ID, s.domain)

	lines := logged(t, p.daemon, 2*time.Minute, 2, "preview certificate not obtained", "Invalid access token")
	t.Logf("logged: %s", lines[0])
	if n := s.cf.Requests(); n < 2 {
		t.Errorf("%d Cloudflare requests after two failures, want a retry", n)
	}
	resp, err := tlsClient(t, p.HTTP, nil).Get("http://" + host + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello from "+sb.ID {
		t.Errorf("HTTP preview while issuance fails = %d %q, want it served", resp.StatusCode, body)
	}
	if _, err := handshake(addr, host, nil); err == nil {
		t.Error("HTTPS handshake succeeded without a certificate")
	}
}

// SANDBOXD_TLS=files serves the files' certificate and takes a new one on SIGHUP.
func TestHTTPSFilesReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(names ...string) *x509.CertPool {
		c, k := tlstest.SelfSigned(t, names...)
		// Written next to the files and renamed over them, as certbot's deploy does.
		for path, b := range map[string][]byte{certPath: c, keyPath: k} {
			if err := os.WriteFile(path+".new", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(c)
		return pool
	}
	first := write("*.preview.localhost")
	p := e.startProcess(map[string]string{"SANDBOXD_TLS": "files", "SANDBOXD_HTTPS_BIND": "127.0.0.1:0",
		"SANDBOXD_TLS_CERT": certPath, "SANDBOXD_TLS_KEY": keyPath})
	addr := httpsAddr(t, p.daemon)
	if _, err := handshake(addr, "s-x-3000.preview.localhost", first); err != nil {
		t.Fatalf("handshake with the first certificate: %v", err)
	}
	second := write("*.preview.localhost")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logged(t, p.daemon, 30*time.Second, 1, "SIGHUP: reloading TLS certificate files")
	testutil.Eventually(t, 30*time.Second, "the second certificate is served", func() bool {
		_, err := handshake(addr, "s-x-3000.preview.localhost", second)
		return err == nil
	})
	// SIGHUP's default action would have ended the process; a clean stop shows it ran on.
	if err := p.stop(); err != nil {
		t.Errorf("stop after SIGHUP: %v", err)
	}
}
