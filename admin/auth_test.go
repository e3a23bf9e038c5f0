package admin

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sandboxd/sandboxd/admin/apikey"
)

// The API refuses what a browser sends on another site's behalf, and without tokens it
// answers only loopback Host names (DNS rebinding).
func TestRefuseBrowser(t *testing.T) {
	s := New(Deps{}, nil)
	s.LoopbackOnly = true
	h := s.Handler()
	cases := []struct {
		name   string
		host   string
		header map[string]string
		want   int
	}{
		{"curl on loopback", "127.0.0.1:9090", nil, 200},
		{"localhost name", "localhost:9090", nil, 200},
		{"ipv6 loopback", "[::1]:9090", nil, 200},
		{"rebound name", "evil.example:9090", nil, 403},
		{"cross-origin page", "127.0.0.1:9090", map[string]string{"Origin": "https://evil.example"}, 403},
		{"same origin", "127.0.0.1:9090", map[string]string{"Origin": "http://127.0.0.1:9090"}, 200},
		{"opaque origin", "127.0.0.1:9090", map[string]string{"Origin": "null"}, 403},
		{"fetch metadata", "127.0.0.1:9090", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/healthz", nil)
			r.Host = c.host
			for k, v := range c.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
		})
	}
}

func TestBearerTokens(t *testing.T) {
	keys := apikey.New(nil)
	keys.SetEnv([]apikey.Token{{Name: "ci", Secret: "s3cret-one"}, {Name: "ops", Secret: "s3cret-two"}})
	s := New(Deps{Keys: keys}, nil)
	h := s.Handler()
	cases := []struct {
		name, path, auth string
		want             int
	}{
		{"no token", "/v1/sandboxes/x/purge", "", 401},
		{"wrong token", "/v1/sandboxes/x/purge", "Bearer nope", 401},
		{"empty bearer", "/v1/sandboxes/x/purge", "Bearer ", 401},
		{"good token reaches the route", "/v1/nosuchroute", "Bearer s3cret-two", 404},
		{"lower-case scheme", "/v1/nosuchroute", "bearer s3cret-one", 404},
		{"healthz is open", "/healthz", "", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", c.path, nil)
			if c.path == "/healthz" {
				r.Method = http.MethodGet
			}
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
		})
	}
}
