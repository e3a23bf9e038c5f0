package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/libdns/cloudflare"
	"github.com/sandboxd/sandboxd/edge"
	"golang.org/x/sync/errgroup"
)

// httpsFront is the edge's HTTPS listener and where its certificates come from. A nil
// *httpsFront is SANDBOXD_TLS=off: every method then does nothing.
//
// The listener is bound at start, so a bind error stops sandboxd at once and the
// "serving" line can name its address; until the first certificate exists, handshakes
// fail with a TLS alert and plain HTTP keeps serving previews (see edge.HTTPS).
type httpsFront struct {
	ln      net.Listener
	srv     *http.Server
	https   *edge.HTTPS
	edge    *edge.Server // its caps count the HTTPS listener's connections with the plain one's
	certs   certSource
	files   *edge.CertFiles // files mode: reloaded on SIGHUP
	hup     chan os.Signal
	log     *slog.Logger
	timeout time.Duration // for Shutdown
}

// certSource is *edge.ACME or *edge.CertFiles.
type certSource interface {
	edge.Certificates
	Run(ctx context.Context) error
}

var (
	_ certSource = (*edge.ACME)(nil)
	_ certSource = (*edge.CertFiles)(nil)
)

// listenHTTPS binds SANDBOXD_HTTPS_BIND and prepares the certificates for cfg.TLS.Mode;
// it returns nil when TLS is off. Close it when serve returns.
func listenHTTPS(cfg *config, edgeSrv *edge.Server, log *slog.Logger) (*httpsFront, error) {
	if cfg.TLS.Mode == "off" || cfg.TLS.Mode == "" {
		return nil, nil
	}
	log = log.With("component", "tls")
	f := &httpsFront{log: log, timeout: cfg.WakeTimeout, edge: edgeSrv}
	switch cfg.TLS.Mode {
	case "acme":
		dns, err := dnsProvider(&cfg.TLS)
		if err != nil {
			return nil, err
		}
		a := edge.NewACME(cfg.PreviewDomain, cfg.TLS.ACMEEmail, filepath.Join(cfg.DataDir, "certs"), dns, log)
		a.CA, a.TrustedRoots, a.Resolvers = cfg.TLS.ACMECA, cfg.TLS.ACMERoots, cfg.TLS.DNSResolvers
		a.RetryMin = cfg.TLS.ACMERetry
		f.certs = a
	case "files":
		files, err := edge.NewCertFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile, log)
		if err != nil {
			return nil, fmt.Errorf("SANDBOXD_TLS_CERT, SANDBOXD_TLS_KEY: %w", err)
		}
		f.certs, f.files = files, files
		// Registered before "serving" is logged: a SIGHUP from then on reloads, and never
		// falls to the default action of ending the process.
		f.hup = make(chan os.Signal, 1)
		signal.Notify(f.hup, syscall.SIGHUP)
	default:
		return nil, fmt.Errorf("SANDBOXD_TLS=%q: want off, acme or files", cfg.TLS.Mode)
	}
	ln, err := net.Listen("tcp", cfg.HTTPSBind)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("SANDBOXD_HTTPS_BIND: %w", err)
	}
	f.ln = ln
	f.https = edge.NewHTTPS(edgeSrv, f.certs)
	f.https.HSTS = cfg.TLS.HSTS
	f.https.Port = ln.Addr().(*net.TCPAddr).Port
	f.srv = f.https.Server(cfg.HTTPSBind)
	return f, nil
}

// dnsProvider builds the DNS-01 provider that SANDBOXD_DNS_PROVIDER names.
func dnsProvider(c *tlsConfig) (certmagic.DNSProvider, error) {
	switch c.DNSProvider {
	case "cloudflare":
		return &cloudflare.Provider{APIToken: c.CloudflareToken}, nil
	}
	return nil, fmt.Errorf("SANDBOXD_DNS_PROVIDER=%q: want cloudflare", c.DNSProvider)
}

// Redirect wraps the plain HTTP handler so that preview hosts go to HTTPS once a
// certificate is ready.
func (f *httpsFront) Redirect(h http.Handler) http.Handler {
	if f == nil {
		return h
	}
	return f.https.Redirect(h)
}

// guard wraps the HTTPS listener (issue 15: the egress proxy's Guard).
func (f *httpsFront) guard(wrap func(net.Listener) net.Listener) {
	if f != nil {
		f.ln = wrap(f.ln)
	}
}

// Addr is the HTTPS listener's address, or "" when TLS is off.
func (f *httpsFront) Addr() string {
	if f == nil {
		return ""
	}
	return f.ln.Addr().String()
}

// previewURL formats the preview URLs the API reports: https ones on the HTTPS
// listener when TLS is on, plain otherwise.
func (f *httpsFront) previewURL(domain string, plain func(string, int) string) func(string, int) string {
	if f == nil {
		return plain
	}
	return previewURL("https", domain, f.ln.Addr())
}

// Run serves HTTPS and manages the certificates until ctx is done, then shuts the HTTPS
// server down (upgraded connections included) and returns once everything it started
// has ended.
func (f *httpsFront) Run(ctx context.Context) error {
	if f == nil {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := f.srv.ServeTLS(f.edge.TLSListener(f.ln), "", ""); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("https: %w", err)
		}
		return nil
	})
	g.Go(func() error { return f.certs.Run(gctx) })
	if f.files != nil {
		g.Go(func() error { f.reloadOnHUP(gctx); return nil })
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		return f.srv.Shutdown(sctx)
	})
	return g.Wait()
}

// reloadOnHUP reloads the certificate files at each SIGHUP until ctx is done.
func (f *httpsFront) reloadOnHUP(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.hup:
			f.log.Info("SIGHUP: reloading TLS certificate files")
			changed, err := f.files.Reload()
			switch {
			case err != nil:
				f.log.Error("SIGHUP: TLS certificate files do not load; keeping the previous certificate", "err", err)
			case !changed:
				f.log.Info("SIGHUP: TLS certificate files unchanged")
			}
		}
	}
}

// Close releases the listener and the SIGHUP subscription.
func (f *httpsFront) Close() {
	if f == nil {
		return
	}
	if f.hup != nil {
		signal.Stop(f.hup)
	}
	if f.ln != nil {
		f.ln.Close()
	}
}
