package main

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
)

// tlsConfig is the HTTPS side of the configuration: SANDBOXD_TLS and what each mode
// needs. The listener's address is config.HTTPSBind.
type tlsConfig struct {
	Mode            string // off, acme or files
	HSTS            string // Strict-Transport-Security value; empty sends none
	ACMEEmail       string
	ACMECA          string         // directory URL
	ACMECARoot      string         // PEM file trusted for the CA's HTTPS server
	ACMERoots       *x509.CertPool // loaded from ACMECARoot; nil: the system's roots
	ACMERetry       time.Duration  // first wait after a failed issuance
	DNSProvider     string         // cloudflare
	CloudflareToken string
	DNSResolvers    []string // host:port
	CertFile        string   // files mode
	KeyFile         string
}

// tlsSettings are the variables of tlsConfig, in the table of loadConfig.
func tlsSettings(c *tlsConfig) []setting {
	return []setting{
		{"SANDBOXD_TLS", "tls", "off", "HTTPS for previews: off, acme (wildcard certificate by DNS-01) or files", func(v string) error {
			switch v {
			case "off", "acme", "files":
				c.Mode = v
				return nil
			}
			return fmt.Errorf("want off, acme or files")
		}},
		{"SANDBOXD_HSTS", "hsts", "", `Strict-Transport-Security value on HTTPS responses, like "max-age=31536000" (empty: none)`, func(v string) error {
			if v != "" && !validHSTS(v) {
				return fmt.Errorf(`want a Strict-Transport-Security value starting with max-age=<seconds>, like "max-age=31536000"`)
			}
			c.HSTS = v
			return nil
		}},
		{"SANDBOXD_ACME_EMAIL", "acme-email", "", "ACME account contact address (acme)", strParser(&c.ACMEEmail)},
		{"SANDBOXD_ACME_CA", "acme-ca", "production", "ACME directory: production, staging (Let's Encrypt's) or an https:// URL (acme)", func(v string) error {
			switch v {
			case "production":
				c.ACMECA = certmagic.LetsEncryptProductionCA
			case "staging":
				c.ACMECA = certmagic.LetsEncryptStagingCA
			default:
				u, err := url.Parse(v)
				if err != nil || u.Scheme != "https" || u.Host == "" {
					return fmt.Errorf("want production, staging or an https:// directory URL")
				}
				c.ACMECA = v
			}
			return nil
		}},
		{"SANDBOXD_ACME_CA_ROOT", "acme-ca-root", "", "PEM file of roots to trust for the ACME CA's HTTPS server, for a private CA (acme)", strParser(&c.ACMECARoot)},
		{"SANDBOXD_ACME_RETRY", "acme-retry", "1m", "wait after a failed issuance; doubles with each failure up to 1h (acme)", durParser(&c.ACMERetry, 10*time.Millisecond)},
		{"SANDBOXD_DNS_PROVIDER", "dns-provider", "cloudflare", "DNS provider for the DNS-01 challenge: cloudflare (acme)", func(v string) error {
			if v != "cloudflare" {
				return fmt.Errorf("want cloudflare")
			}
			c.DNSProvider = v
			return nil
		}},
		{"CLOUDFLARE_API_TOKEN", "cloudflare-api-token", "", "Cloudflare API token with Zone → DNS → Edit on the preview domain's zone (acme)", strParser(&c.CloudflareToken)},
		{"SANDBOXD_DNS_RESOLVERS", "dns-resolvers", "", "host[:port],... DNS servers for the challenge's zone and propagation checks (acme; empty: the system's)", func(v string) error {
			rs, err := parseResolvers(v)
			c.DNSResolvers = rs
			return err
		}},
		{"SANDBOXD_TLS_CERT", "tls-cert", "", "PEM certificate chain file, reloaded on change and on SIGHUP (files)", strParser(&c.CertFile)},
		{"SANDBOXD_TLS_KEY", "tls-key", "", "PEM private key file of SANDBOXD_TLS_CERT (files)", strParser(&c.KeyFile)},
	}
}

// validate checks what the mode needs, once every variable is read.
func (c *tlsConfig) validate(previewDomain string) error {
	switch c.Mode {
	case "acme":
		if previewDomain == "localhost" || strings.HasSuffix(previewDomain, ".localhost") {
			return fmt.Errorf("SANDBOXD_TLS=acme needs PREVIEW_DOMAIN set to a domain in public DNS, not %q", previewDomain)
		}
		if c.ACMEEmail == "" || !strings.Contains(c.ACMEEmail, "@") {
			return fmt.Errorf("SANDBOXD_TLS=acme needs SANDBOXD_ACME_EMAIL, the ACME account's contact address (got %q)", c.ACMEEmail)
		}
		if c.DNSProvider == "cloudflare" && c.CloudflareToken == "" {
			return fmt.Errorf("SANDBOXD_TLS=acme with SANDBOXD_DNS_PROVIDER=cloudflare needs CLOUDFLARE_API_TOKEN, a token with Zone → DNS → Edit on the zone of PREVIEW_DOMAIN")
		}
		if c.ACMECARoot != "" {
			b, err := os.ReadFile(c.ACMECARoot)
			if err != nil {
				return fmt.Errorf("SANDBOXD_ACME_CA_ROOT: %w", err)
			}
			c.ACMERoots = x509.NewCertPool()
			if !c.ACMERoots.AppendCertsFromPEM(b) {
				return fmt.Errorf("SANDBOXD_ACME_CA_ROOT=%q: no PEM certificate in it", c.ACMECARoot)
			}
		}
	case "files":
		if c.CertFile == "" || c.KeyFile == "" {
			return fmt.Errorf("SANDBOXD_TLS=files needs SANDBOXD_TLS_CERT and SANDBOXD_TLS_KEY, the PEM certificate chain and key files")
		}
	}
	return nil
}

// parseResolvers reads "1.1.1.1,[2606:4700::1111]:53,ns.example.com:5353"; a missing
// port is 53.
func parseResolvers(v string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(v, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if _, err := netip.ParseAddr(strings.Trim(r, "[]")); err == nil {
			out = append(out, net.JoinHostPort(strings.Trim(r, "[]"), "53"))
			continue
		}
		host, port, err := net.SplitHostPort(r)
		if err != nil {
			host, port = r, "53"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("resolver %q: port is not 1-65535", r)
		}
		if _, err := netip.ParseAddr(host); err != nil && !validDomain(strings.ToLower(host)) {
			return nil, fmt.Errorf("resolver %q: want an IP address or a host name, with an optional :port", r)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}

// validHSTS accepts "max-age=<seconds>" with optional directives after ';'.
func validHSTS(v string) bool {
	first, _, _ := strings.Cut(v, ";")
	age, ok := strings.CutPrefix(strings.TrimSpace(first), "max-age=")
	if !ok {
		return false
	}
	_, err := strconv.ParseUint(age, 10, 32)
	return err == nil
}
