package tlstest

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// Pebble is Let's Encrypt's test ACME CA, run in this process on a
// loopback HTTPS port. Its validation authority resolves DNS-01 TXT
// records with a given DNS server, without the random sleeps.
type Pebble struct {
	Directory string // the ACME directory URL
	RootFile  string // PEM file of the certificate of Directory's HTTPS server

	ca *ca.CAImpl
}

// NewPebble serves a CA until the test ends, issuing certificates valid for
// validity (0 means Pebble's default, about 90 days) and validating DNS-01
// with the server at dnsAddr. It sets Pebble's environment knobs with
// t.Setenv, so the test must not be parallel.
func NewPebble(t testing.TB, dnsAddr string, validity time.Duration) *Pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0") // acmez retries bad nonces, but tests need not
	t.Setenv("PEBBLE_AUTHZREUSE", "0")      // every order is validated through DNS again
	logger := log.New(io.Discard, "pebble ", log.LstdFlags)
	if os.Getenv("TLSTEST_PEBBLE_LOG") != "" {
		logger.SetOutput(os.Stderr)
	}
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: uint64(validity / time.Second)}}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	// The VA's task goroutine has no stop: it lives until the test binary exits.
	validator := va.New(logger, 0, 0, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewUnstartedServer(front.Handler())
	srv.StartTLS()
	t.Cleanup(srv.Close)

	root := filepath.Join(t.TempDir(), "pebble-server.pem")
	if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Pebble{Directory: srv.URL + wfe.DirectoryPath, RootFile: root, ca: authority}
}

// ServerRoots is the pool that verifies Directory's HTTPS server.
func (p *Pebble) ServerRoots(t testing.TB) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(p.RootFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool
}

// IssuerRoots is the pool of the roots Pebble issues under: what a client
// of a server with a Pebble certificate trusts, and nothing else.
func (p *Pebble) IssuerRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	for i := 0; i < p.ca.GetNumberOfRootCerts(); i++ {
		pool.AddCert(p.ca.GetRootCert(i).Cert)
	}
	return pool
}
