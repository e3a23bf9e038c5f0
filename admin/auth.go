package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/sandboxd/sandboxd/admin/apikey"
	"github.com/sandboxd/sandboxd/internal/httpguard"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// open paths answer without a token: probes from load balancers and systemd.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true}

// authenticate names the request's principal from "Authorization: Bearer <secret>": an
// environment token or a stored one (apikey.Keys). When the operator configured no
// tokens, a request without one acts as the operator; a token that is sent must be valid
// either way, so a tenant's client that lost its token hears so instead of acting as the
// operator. Either way, a browser page of another origin is refused: the API is for
// programs, and a page must not drive it with the browser of someone who can reach it.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := httpguard.RefuseBrowser(r, s.LoopbackOnly); reason != "" {
			s.writeError(w, r, &apiError{http.StatusForbidden, "forbidden", reason})
			return
		}
		if openPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		info := infoOf(r)
		secret := bearer(r)
		if s.keys == nil || (secret == "" && !s.keys.Required()) {
			info.principal = &operator
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.keys.Authenticate(r.Context(), secret)
		if errors.Is(err, apikey.ErrUnknown) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sandboxd"`)
			s.writeError(w, r, &apiError{http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"})
			return
		}
		if err != nil {
			s.writeError(w, r, &lifecycle.Error{Code: lifecycle.CodeInternal, Message: "checking the token failed", Err: err})
			return
		}
		info.principal = &p
		next.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
