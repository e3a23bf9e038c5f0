package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CertFiles serves a certificate and key from PEM files that something
// else renews (certbot, a secrets manager), and reloads them when they
// change: Run reads them every Interval, and Reload (on SIGHUP, say) reads
// them at once. A pair that does not load, such as a certificate written
// before its new key, leaves the previous certificate in service.
type CertFiles struct {
	// Interval is how often Run reads the files to see whether they
	// changed. Zero means 10s.
	Interval time.Duration

	certPath, keyPath string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]
	ready             chan struct{}

	mu              sync.Mutex // serializes reloads; guards the fields below
	certPEM, keyPEM []byte     // what cert was loaded from
	lastErr         string     // the previous reload's failure, or empty
}

// NewCertFiles loads the certificate chain at certPath and its key at
// keyPath; either failing is an error. A nil log discards.
func NewCertFiles(certPath, keyPath string, log *slog.Logger) (*CertFiles, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &CertFiles{certPath: certPath, keyPath: keyPath, log: log, ready: make(chan struct{})}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	close(f.ready)
	return f, nil
}

// GetCertificate returns the certificate, whatever the SNI.
func (f *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cert.Load(), nil
}

// Ready is closed from the start: NewCertFiles has loaded a certificate.
func (f *CertFiles) Ready() <-chan struct{} { return f.ready }

// Reload reads both files and, if they changed and load, puts the new
// certificate in service. It reports whether it did. On error the previous
// certificate stays.
func (f *CertFiles) Reload() (changed bool, err error) {
	changed, _, err = f.reload()
	return changed, err
}

// reload is Reload; repeat reports that err is the same failure as the
// previous call's, so Run logs it once.
func (f *CertFiles) reload() (changed, repeat bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	certPEM, err := os.ReadFile(f.certPath)
	if err == nil {
		var keyPEM []byte
		keyPEM, err = os.ReadFile(f.keyPath)
		if err == nil {
			changed, err = f.load(certPEM, keyPEM)
		}
	}
	if err == nil {
		f.lastErr = ""
		return changed, false, nil
	}
	repeat = err.Error() == f.lastErr
	f.lastErr = err.Error()
	return false, repeat, err
}

// load puts the pair in service unless it is the one in service already.
func (f *CertFiles) load(certPEM, keyPEM []byte) (bool, error) {
	if bytes.Equal(certPEM, f.certPEM) && bytes.Equal(keyPEM, f.keyPEM) {
		return false, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("%s and %s: %w", f.certPath, f.keyPath, err)
	}
	f.cert.Store(&cert)
	f.certPEM, f.keyPEM = certPEM, keyPEM
	f.log.Info("TLS certificate loaded", "cert", f.certPath, "names", cert.Leaf.DNSNames,
		"not_after", cert.Leaf.NotAfter, "serial", cert.Leaf.SerialNumber.String())
	return true, nil
}

// Run reloads the files every Interval until ctx is done, and returns nil
// then. A failure is logged once, not at every tick.
func (f *CertFiles) Run(ctx context.Context) error {
	interval := f.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			f.check()
		}
	}
}

// check is one pass of Run.
func (f *CertFiles) check() {
	if _, repeat, err := f.reload(); err != nil && !repeat {
		f.log.Error("TLS certificate files do not load; keeping the previous certificate", "err", err)
	}
}
