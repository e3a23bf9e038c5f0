package edge

import (
	"net/http"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/internal/previewtoken"
)

// Private previews (issue 13). A private port answers only requests that carry a preview
// token for that port of that sandbox, signed with the sandbox's key (Route.Key):
//
//   - a link, ?sandboxd_token=…: a browser opening it gets a cookie holding the token and a
//     303 to the same URL without it, so the token leaves the address bar and Referer;
//   - the cookie: host-only (no Domain), so it never reaches another sandbox's host;
//     HttpOnly; Secure and named __Host-… under HTTPS, which also stops a sibling host
//     from planting one; SameSite=Lax, or None and Partitioned for a token minted with
//     "embed", so it works in another site's iframe; it expires with the token;
//   - the header X-Sandboxd-Preview-Token, for programs. Authorization is the app's.
//
// WebSocket upgrades and SSE are requests like any other: the cookie or the header opens
// them. The check runs before the wake, so a stranger never starts a sleeping sandbox, and
// it reads memory only: the route's key and an HMAC (about 0.5 µs). Every credential is
// stripped before a request goes to the app, on public ports too (stripCredentials).
const (
	// TokenParam is the query parameter of a preview link.
	TokenParam = previewtoken.Param
	// TokenHeader carries a preview token from a program.
	TokenHeader = previewtoken.Header

	cookieName       = "sandboxd_preview"
	secureCookieName = "__Host-" + cookieName // HTTPS: the browser refuses it from any other host
)

// admit lets r through to a private port of e, or answers it: 401 without a valid token, or
// the 303 that trades a link's token for a cookie. It reports whether r may go on.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, e *entry, port int) bool {
	now := s.now()
	if tok := linkToken(r.URL.RawQuery); tok != "" {
		c, err := previewtoken.Verify(e.route.Key, e.route.ID, port, tok, now)
		if err == nil && navigation(r) {
			s.trade(w, r, tok, c, now)
			return false
		}
		if err == nil {
			return true // a link used by a program, a POST or a WebSocket: no cookie, no redirect
		}
	}
	if s.verified(r, e, port) {
		return true
	}
	s.answer(w, r, unauthorized())
	return false
}

// verified reports whether r carries a valid token for port of e, in the header, a cookie
// or the link.
func (s *Server) verified(r *http.Request, e *entry, port int) bool {
	now := s.now()
	ok := func(tok string) bool {
		_, err := previewtoken.Verify(e.route.Key, e.route.ID, port, tok, now)
		return err == nil
	}
	if tok := r.Header.Get(TokenHeader); tok != "" && ok(tok) {
		return true
	}
	if tok := linkToken(r.URL.RawQuery); tok != "" && ok(tok) {
		return true
	}
	return tokenCookies(r.Header["Cookie"], ok)
}

// navigation reports a request the browser follows a 303 for and keeps a cookie from: a
// GET or HEAD that is not a WebSocket handshake (a browser does not follow redirects there).
func navigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("Upgrade") == ""
}

// trade answers a link: the cookie, and a 303 to the same URL without the token.
func (s *Server) trade(w http.ResponseWriter, r *http.Request, tok string, c previewtoken.Claims, now time.Time) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// An absolute URL on the host the request named: a path like "//evil.example" stays a
	// path of this host instead of becoming a scheme-relative redirect elsewhere.
	loc := scheme + "://" + r.Host + r.URL.EscapedPath()
	if q := withoutToken(r.URL.RawQuery); q != "" {
		loc += "?" + q
	}
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	http.SetCookie(w, s.tokenCookie(r, tok, c, now))
	if s.OnStatus != nil {
		s.OnStatus(http.StatusSeeOther)
	}
	w.WriteHeader(http.StatusSeeOther)
}

// tokenCookie is the cookie that holds tok on r's host.
//
// An embed cookie must be SameSite=None, which browsers take only with Secure. Under HTTPS
// that holds. Over plain HTTP it holds only for hosts browsers count as secure contexts:
// *.localhost, the default preview domain, so `make run` can show a private preview in an
// iframe. On any other domain without TLS the cookie falls back to Lax: the preview opens
// in its own tab, but inside another site's iframe the browser does not send it and the
// preview answers 401 (README, "Private previews").
func (s *Server) tokenCookie(r *http.Request, tok string, c previewtoken.Claims, now time.Time) *http.Cookie {
	ck := &http.Cookie{
		Name: cookieName, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Expires: c.Expires, MaxAge: max(1, int(c.Expires.Sub(now)/time.Second)),
	}
	if r.TLS != nil {
		ck.Name, ck.Secure = secureCookieName, true
	}
	if c.Embed && (r.TLS != nil || s.localDomain()) {
		ck.SameSite, ck.Secure, ck.Partitioned = http.SameSiteNoneMode, true, true
	}
	return ck
}

// localDomain reports a preview domain browsers treat as a secure context over plain HTTP.
func (s *Server) localDomain() bool {
	return s.domain == "localhost" || strings.HasSuffix(s.domain, ".localhost")
}

// unauthorized is the 401 of a private port. Its WWW-Authenticate names a scheme no
// browser knows, so none shows a password prompt.
func unauthorized() answer {
	return answer{status: http.StatusUnauthorized, code: "unauthorized", authenticate: "Sandboxd-Preview-Token",
		message: "this preview is private, and its link is missing, expired or revoked: ask its owner for a new link"}
}

// revoked closes the WebSockets proxied to the ports of id whose access got stricter: a
// revoked token's sessions end with it, and those of a port that turned private.
func (s *Server) revoked(id string, tightened func(port int) bool) {
	s.upgrades.closeWhere(func(c *upgradedConn) bool { return c.id == id && tightened(c.port) })
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
