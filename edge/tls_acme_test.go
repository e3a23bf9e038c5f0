package edge

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/edge/tlstest"
)

// acmeEnv is an ACME for domain against an in-process Pebble, solving
// DNS-01 through provider into an in-test DNS server, running until the
// test ends. Each test has its own domain: certmagic keeps a few
// process-wide tables keyed by name (SOA cache, renewal jobs).
type acmeEnv struct {
	acme     *ACME
	pebble   *tlstest.Pebble
	provider *tlstest.Provider
	logs     *logSink
	edge     *tlsEdge
	roots    *x509.CertPool // Pebble's issuing roots only
}

func newACMEEnv(t *testing.T, domain string, validity time.Duration, configure func(*ACME)) *acmeEnv {
	t.Helper()
	dns := tlstest.NewDNS(t, domain)
	env := &acmeEnv{
		pebble:   tlstest.NewPebble(t, dns.Addr, validity),
		provider: &tlstest.Provider{DNS: dns},
		logs:     newLogSink(),
	}
	env.roots = env.pebble.IssuerRoots()
	a := NewACME(domain, "ops@"+domain, t.TempDir(), env.provider, env.logs.logger())
	a.CA = env.pebble.Directory
	a.TrustedRoots = env.pebble.ServerRoots(t)
	a.Resolvers = []string{dns.Addr}
	a.RetryMin, a.RetryMax = 50*time.Millisecond, time.Second
	if configure != nil {
		configure(a)
	}
	env.acme = a
	env.edge = newTLSEdge(t, domain, a, env.logs.logger())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return env
}

func (env *acmeEnv) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-env.acme.Ready():
	case <-time.After(2 * time.Minute):
		t.Fatalf("no certificate in time; log:\n%s", env.logs)
	}
}

func TestACMEIssuesWildcard(t *testing.T) {
	const domain = "issue.test"
	env := newACMEEnv(t, domain, 0, nil)
	e := env.edge
	env.waitReady(t)

	t.Run("wildcard and apex certificates", func(t *testing.T) {
		leaf, err := e.handshake(e.host(), env.roots)
		if err != nil {
			t.Fatalf("handshake trusting Pebble's root only: %v", err)
		}
		if !slices.Equal(leaf.DNSNames, []string{"*.preview." + domain}) {
			t.Errorf("preview host served a certificate for %v", leaf.DNSNames)
		}
		leaf, err = e.handshake("preview."+domain, env.roots)
		if err != nil || !slices.Equal(leaf.DNSNames, []string{"preview." + domain}) {
			t.Errorf("apex: %v, %v", err, leaf)
		}
		if _, err := e.handshake("elsewhere.test", env.roots); err == nil {
			t.Error("a name not managed got a certificate")
		}
	})
	t.Run("preview over HTTPS", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "https://"+e.host()+"/", nil)
		resp, err := e.client(env.roots).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "hello from web" {
			t.Fatalf("GET = %d %q", resp.StatusCode, body)
		}
	})
	t.Run("wss echo", func(t *testing.T) { e.wss(env.roots) })
	t.Run("HTTP redirects to HTTPS", func(t *testing.T) {
		resp, err := e.client(env.roots).Get("http://" + e.host() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://"+e.host()+":"+itoa(e.https.Port)+"/x" {
			t.Errorf("HTTP = %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("a restart loads the certificates from storage", func(t *testing.T) {
		again := NewACME(domain, "ops@"+domain, env.acme.storage, env.provider, nil)
		again.CA, again.TrustedRoots, again.Resolvers = env.acme.CA, env.acme.TrustedRoots, env.acme.Resolvers
		before := env.provider.Appends()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- again.Run(ctx) }()
		stop := sync.OnceFunc(func() { cancel(); <-done })
		defer stop() // a failed wait below must not leave Run going
		select {
		case <-again.Ready():
		case <-time.After(2 * time.Minute):
			t.Fatal("no certificate from storage in time")
		}
		stop()
		if n := env.provider.Appends() - before; n != 0 {
			t.Errorf("%d DNS challenges on restart, want none", n)
		}
	})
}

// A short-lived certificate is renewed in the background and the new one
// served by the same listener.
func TestACMERenews(t *testing.T) {
	const validity = 30 * time.Second
	env := newACMEEnv(t, "renew.test", validity, func(a *ACME) {
		a.RenewalWindowRatio = 0.75 // renew about 7s after issuance
		a.RenewCheckInterval = 500 * time.Millisecond
	})
	e := env.edge
	env.waitReady(t)
	first, err := e.handshake(e.host(), env.roots)
	if err != nil {
		t.Fatal(err)
	}
	if life := first.NotAfter.Sub(first.NotBefore); life > validity {
		t.Fatalf("certificate lives %s, want a short-lived one", life)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		leaf, err := e.handshake(e.host(), env.roots)
		if err != nil {
			t.Fatalf("handshake during renewal: %v", err)
		}
		if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			if !leaf.NotAfter.After(first.NotAfter) {
				t.Errorf("renewed certificate expires %s, not after the first's %s", leaf.NotAfter, first.NotAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate not renewed by %s; log:\n%s", deadline, env.logs)
		}
		time.Sleep(200 * time.Millisecond) // polling with a deadline, not ordering
	}
	e.wss(env.roots)
}

// A DNS provider that fails: the cause is logged, the attempt retried, and
// plain HTTP keeps serving previews; once it works, HTTPS comes up.
func TestACMEFailingProvider(t *testing.T) {
	cause := errors.New("zone is read-only for this token")
	env := newACMEEnv(t, "fail.test", 0, func(a *ACME) {
		a.dns.(*tlstest.Provider).SetFail(cause)
	})
	e := env.edge
	lines := env.logs.wait(t, time.Minute, 2, "preview certificate not obtained", cause.Error())
	if env.provider.Appends() < 2 {
		t.Errorf("%d DNS appends after two failures", env.provider.Appends())
	}
	t.Logf("first failure: %s", lines[0])

	resp, err := e.client(env.roots).Get("http://" + e.host() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello from web" {
		t.Errorf("HTTP preview while issuance fails = %d %q, want it served", resp.StatusCode, body)
	}
	if _, err := e.handshake(e.host(), env.roots); err == nil {
		t.Error("HTTPS handshake succeeded without a certificate")
	}

	env.provider.SetFail(nil)
	env.waitReady(t)
	if _, err := e.handshake(e.host(), env.roots); err != nil {
		t.Errorf("handshake after recovery: %v", err)
	}
}
