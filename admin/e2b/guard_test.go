package e2b

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/lifecycle"
)

// Every lifecycle code answers a real status, admin's for the codes both tables know. A
// code missing here (CodeLimit and CodeDiskQuota were) reached WriteHeader(0), which
// panics; one no table knows answers 500 "internal error", as admin does.
func TestWriteErrStatusOfEveryCode(t *testing.T) {
	admin := map[lifecycle.Code]int{ // what admin answers (admin/httpstatus)
		lifecycle.CodeInvalid:     http.StatusBadRequest,
		lifecycle.CodeNotFound:    http.StatusNotFound,
		lifecycle.CodeConflict:    http.StatusConflict,
		lifecycle.CodeUnavailable: http.StatusServiceUnavailable,
		lifecycle.CodeUnsupported: http.StatusUnprocessableEntity,
		lifecycle.CodeInternal:    http.StatusInternalServerError,
		lifecycle.CodeLimit:       http.StatusTooManyRequests,
		lifecycle.CodeDiskQuota:   http.StatusInsufficientStorage,
		"made_up":                 http.StatusInternalServerError, // no table's code
	}
	s := &Server{log: slog.New(slog.DiscardHandler)}
	for code, want := range admin {
		t.Run(string(code), func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("writeErr panicked: %v", p)
				}
			}()
			w := httptest.NewRecorder()
			s.writeErr(w, httptest.NewRequest("GET", "/sandboxes/a", nil), &lifecycle.Error{Code: code, Message: "the message"})
			if w.Code < 100 || w.Code != want {
				t.Fatalf("status %d, want %d (admin's)", w.Code, want)
			}
			if code == "made_up" && !strings.Contains(w.Body.String(), `"internal error"`) {
				t.Fatalf("an unmapped code answered %s, want the message kept for the log", w.Body)
			}
		})
	}
	w := httptest.NewRecorder()
	s.writeErr(w, httptest.NewRequest("GET", "/sandboxes/a", nil), errors.New("boom"))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("a plain error: %d, want 500", w.Code)
	}
}

// With LoopbackOnly (no tokens, a loopback bind: any key is the operator), a Host that is
// not a loopback name is refused, for a DNS-rebound page would reach the listener under
// its own name. A cross-origin page is refused by its Origin either way, as by admin's.
func TestAuthRefusesRebindingAndCrossOrigin(t *testing.T) {
	s := New(nil, nil, nil, keys{testAPIKey: {Actor: "tester"}}, make([]byte, 32), nil)
	s.LoopbackOnly = true
	h := s.Handler()
	for _, c := range []struct {
		name, host, origin string
		refused            bool
	}{
		{"rebound host", "evil.example", "", true},
		{"rebound host with port", "evil.example:49999", "", true},
		{"loopback address", "127.0.0.1:49999", "", false},
		{"localhost", "localhost:49999", "", false},
		{"cross-origin page", "127.0.0.1:49999", "http://evil.example", true},
		{"opaque origin", "127.0.0.1:49999", "null", true},
		{"same origin", "127.0.0.1:49999", "http://127.0.0.1:49999", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/sandboxes", strings.NewReader(`{}`))
			r.Host = c.host
			r.Header.Set("X-API-Key", testAPIKey)
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			// Past auth, create refuses the empty body with 400 before it touches sandboxes.
			if refused := w.Code == http.StatusForbidden; refused != c.refused || (!refused && w.Code != http.StatusBadRequest) {
				t.Fatalf("Host %q Origin %q: %d %s, want refused %v", c.host, c.origin, w.Code, w.Body, c.refused)
			}
		})
	}
}
