package admin

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
)

// open paths answer without a token: probes from load balancers and systemd.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true}

// authenticate checks "Authorization: Bearer <secret>" against every configured secret in
// constant time. With no tokens configured, everything is open.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
