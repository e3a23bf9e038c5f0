package edge

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Certificates gives the HTTPS listener its certificates. *ACME and
// *CertFiles implement it.
type Certificates interface {
	// GetCertificate is tls.Config.GetCertificate; it is called
	// concurrently. Until Ready is closed it returns an error, which fails
	// the handshake with an alert.
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)

	// Ready is closed once GetCertificate can serve preview hosts. It is
	// never reopened: a certificate is only ever replaced by a newer one.
	Ready() <-chan struct{}
}

// errNoCertificate fails handshakes that arrive before the first
// certificate exists.
var errNoCertificate = errors.New("no certificate for preview hosts yet")

// HTTPS is the edge's TLS side: the HTTPS server for preview hosts and the
// redirect of plain HTTP preview requests to it. Create it with NewHTTPS;
// set the knobs before serving.
//
// The HTTPS listener can serve from the start: handshakes fail until the
// first certificate is Ready. Plain HTTP keeps serving previews until then,
// and redirects them to HTTPS from then on, so nothing breaks while a
// certificate is being issued.
type HTTPS struct {
	// HSTS is the Strict-Transport-Security value sent on every HTTPS
	// response, like "max-age=31536000". Empty sends none.
	HSTS string

	// Port is the HTTPS port that redirects point at. 0 and 443 leave the
	// port out of the URL.
	Port int

	edge  *Server
	certs Certificates
}

// NewHTTPS returns the HTTPS side of edge, with certificates from certs.
func NewHTTPS(edge *Server, certs Certificates) *HTTPS {
	return &HTTPS{edge: edge, certs: certs}
}

// TLSConfig returns the configuration of the HTTPS listener: certificates
// from Certificates, HTTP/2 and HTTP/1.1 by ALPN, TLS 1.2 at least.
// WebSockets negotiate HTTP/1.1 (Go's HTTP/2 server does not offer RFC 8441
// extended CONNECT), so ReverseProxy can hijack them as over plain HTTP.
func (h *HTTPS) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: h.certs.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
		MinVersion:     tls.VersionTLS12,
	}
}

// Server returns an *http.Server for the HTTPS listener on addr, with the
// limits and shutdown behaviour of Server.HTTPServer and TLSConfig. Serve
// it with ServeTLS(ln, "", "").
func (h *HTTPS) Server(addr string) *http.Server {
	srv := h.edge.HTTPServer(addr)
	srv.TLSConfig = h.TLSConfig()
	srv.Handler = http.HandlerFunc(h.serveHTTPS)
	return srv
}

func (h *HTTPS) serveHTTPS(w http.ResponseWriter, r *http.Request) {
	if h.HSTS != "" {
		w.Header().Set("Strict-Transport-Security", h.HSTS)
	}
	h.edge.ServeHTTP(w, r)
}

// Redirect wraps the plain HTTP handler: once the certificate is Ready, a
// request for a preview host is answered 308 Permanent Redirect to the
// same URL over HTTPS (308 keeps the method and body of a POST). Other
// hosts, and every request before the first certificate, go to next.
func (h *HTTPS) Redirect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.ready() {
			next.ServeHTTP(w, r)
			return
		}
		if _, _, ok := ParseHost(r.Host, h.edge.domain); !ok {
			next.ServeHTTP(w, r)
			return
		}
		host, _ := stripPort(r.Host)
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if h.Port != 0 && h.Port != 443 {
			host = net.JoinHostPort(host, strconv.Itoa(h.Port))
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

func (h *HTTPS) ready() bool {
	select {
	case <-h.certs.Ready():
		return true
	default:
		return false
	}
}
