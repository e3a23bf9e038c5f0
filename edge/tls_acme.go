package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// ACME obtains and renews the certificates of the preview hosts,
// *.preview.<domain> and preview.<domain>, from an ACME CA by the DNS-01
// challenge, with certmagic's low-level API (its own Cache and Config, none
// of its package defaults). One wildcard certificate serves every sandbox:
// nothing is ordered per host. Create it with NewACME, set the knobs, then
// Run it; GetCertificate and Ready may be used at once.
type ACME struct {
	// CA is the ACME directory URL. Empty means Let's Encrypt's production
	// directory (certmagic.LetsEncryptProductionCA); with it, a retry after
	// a failure goes to Let's Encrypt's staging directory first, so a broken
	// set-up does not use up production's rate limits.
	CA string

	// TrustedRoots verifies the CA's HTTPS server, for a private CA (Pebble
	// in tests). Nil means the system's roots.
	TrustedRoots *x509.CertPool

	// Resolvers are the DNS servers (host:port) asked for the zone's SOA
	// and whether the challenge's TXT record is visible yet. Empty means
	// the system's resolvers, and the zone's authoritative servers for the
	// propagation check.
	Resolvers []string

	// PropagationTimeout bounds the wait for the TXT record to be visible.
	// Zero means 2 minutes; -1 skips the check.
	PropagationTimeout time.Duration

	// RetryMin is the wait after the first failed attempt to obtain the
	// certificates; each further failure doubles it, up to RetryMax. Zero
	// means 1 minute.
	RetryMin time.Duration

	// RetryMax caps the wait between attempts. Zero means 1 hour.
	RetryMax time.Duration

	// RenewalWindowRatio is the share of a certificate's lifetime left when
	// it is renewed. Zero means certmagic's default, 1/3.
	RenewalWindowRatio float64

	// RenewCheckInterval is how often certificates are checked for renewal.
	// Zero means certmagic's default, 10 minutes.
	RenewCheckInterval time.Duration

	names   []string // the wildcard first: it is what previews need
	email   string
	storage string
	dns     certmagic.DNSProvider
	log     *slog.Logger

	cfg   atomic.Pointer[certmagic.Config] // set by Run
	ready chan struct{}
	once  sync.Once
}

// NewACME returns an ACME for the preview hosts of domain (PREVIEW_DOMAIN),
// registering its account with email, keeping accounts, keys and
// certificates in the directory storage, and presenting challenges through
// dns. A nil log discards.
func NewACME(domain, email, storage string, dns certmagic.DNSProvider, log *slog.Logger) *ACME {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := "preview." + strings.ToLower(strings.TrimSuffix(domain, "."))
	return &ACME{
		names:   []string{"*." + base, base},
		email:   email,
		storage: storage,
		dns:     dns,
		log:     log,
		ready:   make(chan struct{}),
	}
}

// Names returns the names the certificates are for.
func (a *ACME) Names() []string { return append([]string(nil), a.names...) }

// Ready is closed once the wildcard certificate is in memory.
func (a *ACME) Ready() <-chan struct{} { return a.ready }

// GetCertificate serves the managed certificates by SNI. Before Ready it
// fails the handshake; other names than the preview hosts fail it too.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	select {
	case <-a.ready:
	default:
		return nil, errNoCertificate
	}
	return a.cfg.Load().GetCertificate(hello)
}

// Run manages the certificates until ctx is done, and returns nil then. It
// loads them from storage or obtains them, retrying failures with backoff
// (each logged with its cause), and leaves renewal to certmagic's
// maintenance, which runs until Run returns. It never blocks the caller on
// issuance: start it in its own goroutine and serve meanwhile.
func (a *ACME) Run(ctx context.Context) error {
	cache, cfg := a.newCertmagic()
	defer cache.Stop() // joins the maintenance goroutine
	a.cfg.Store(cfg)

	for attempt := 0; ; attempt++ {
		err := a.manage(ctx, cfg, attempt)
		if a.haveWildcard(cache) {
			a.once.Do(func() {
				a.log.Info("preview certificate ready", "names", a.names)
				close(a.ready)
			})
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := a.backoff(attempt)
		a.log.Error("preview certificate not obtained; retrying", "names", a.names,
			"attempt", attempt+1, "retry_in", wait.String(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}
	<-ctx.Done()
	return nil
}

// manage is one attempt: each name is loaded from storage, obtained, or
// renewed if due, and put in memory; a name already in memory is left to
// maintenance.
func (a *ACME) manage(ctx context.Context, cfg *certmagic.Config, attempt int) error {
	// certmagic reads the attempt number to send retries to the staging CA.
	ctx = context.WithValue(ctx, certmagic.AttemptsCtxKey, &attempt)
	if err := cfg.ManageSync(ctx, a.names); err != nil {
		return fmt.Errorf("manage %s: %w", strings.Join(a.names, ", "), err)
	}
	return nil
}

// backoff is the wait after the failure of attempt (0-based).
func (a *ACME) backoff(attempt int) time.Duration {
	d, max := a.RetryMin, a.RetryMax
	if d <= 0 {
		d = time.Minute
	}
	if max <= 0 {
		max = time.Hour
	}
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func (a *ACME) haveWildcard(cache *certmagic.Cache) bool {
	for _, c := range cache.AllMatchingCertificates(a.names[0]) {
		if !c.Expired() {
			return true
		}
	}
	return false
}

// newCertmagic builds the cache and config: certmagic's low-level API, its
// logs bridged into log.
func (a *ACME) newCertmagic() (*certmagic.Cache, *certmagic.Config) {
	zl := zapToSlog(a.log)
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			return a.cfg.Load(), nil
		},
		RenewCheckInterval: a.RenewCheckInterval,
		Logger:             zl,
	})
	cfg := certmagic.New(cache, certmagic.Config{
		Storage:            &certmagic.FileStorage{Path: a.storage},
		RenewalWindowRatio: a.RenewalWindowRatio,
		Logger:             zl,
	})
	ca := a.CA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	issuer := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:     ca,
		Email:  a.email,
		Agreed: true,
		DNS01Solver: &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
			DNSProvider:        a.dns,
			Resolvers:          a.Resolvers,
			PropagationTimeout: a.PropagationTimeout,
			Logger:             zl,
		}},
		TrustedRoots:            a.TrustedRoots,
		DisableHTTPChallenge:    true,
		DisableTLSALPNChallenge: true,
		Logger:                  zl,
	})
	cfg.Issuers = []certmagic.Issuer{issuer}
	return cache, cfg
}
