package admin

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// open paths answer without a token: probes from load balancers and systemd.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true}

// authenticate checks "Authorization: Bearer <secret>" against every configured secret in
// constant time. With no tokens configured, everything is open to callers on the host.
// Either way, a browser page of another origin is refused: the API is for programs, and a
// page must not drive it with the browser of someone who can reach it.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := s.refuseBrowser(r); reason != "" {
			s.writeError(w, r, &apiError{http.StatusForbidden, "forbidden", reason})
			return
		}
		s.tokensMu.RLock()
		tokens := s.Tokens
		s.tokensMu.RUnlock()
		if len(tokens) == 0 || openPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		name, ok := match(tokens, bearer(r))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sandboxd"`)
			s.writeError(w, r, &apiError{http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey, name)))
	})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// match compares got with every secret, without stopping at the first match, so the time
// taken says nothing about which secret or how much of it matched.
func match(tokens map[string]string, got string) (name string, ok bool) {
	if got == "" {
		return "", false
	}
	for secret, n := range tokens {
		if subtle.ConstantTimeCompare([]byte(secret), []byte(got)) == 1 {
			name, ok = n, true
		}
	}
	return name, ok
}

// refuseBrowser says why a request that a browser made on behalf of another site is refused,
// or "" to let it through. Programs send no Origin and no Sec-Fetch-Site.
func (s *Server) refuseBrowser(r *http.Request) string {
	if s.LoopbackOnly && !loopbackHost(r.Host) {
		return "Host " + r.Host + " is not a loopback name: the API without tokens answers only localhost"
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return "cross-site browser requests are refused"
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return "cross-origin browser requests are refused"
		}
	} else if o == "null" {
		return "requests from opaque origins are refused"
	}
	return ""
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}
