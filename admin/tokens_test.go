package admin

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// An admin mints a tenant token, which then sees its tenant only; the secret is answered
// once and never listed; a revoked token fails its next call.
func TestStoredTokens(t *testing.T) {
	t.Parallel()
	e := newTenantEnv(t)
	got := e.do("POST", "/v1/tokens", "root", `{"name":"acme-ci","tenant":"a"}`)
	var made tokenView
	json.Unmarshal([]byte(got.body), &made)
	if got.status != 201 || !regexp.MustCompile(`^sbd_[0-9a-f]{64}$`).MatchString(made.Secret) || made.Tenant != "a" ||
		made.Kind != "api" || made.CreatedBy != "root" || made.Hint != made.Secret[:8] || got.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %s", got.status, got.body)
	}
	if got := e.do("GET", "/v1/sandboxes", made.Secret, ""); got.status != 200 || !strings.Contains(got.body, `"a--box"`) || strings.Contains(got.body, `"b--box"`) {
		t.Fatalf("the new token lists: %d %s", got.status, got.body)
	}
	e2b := e.do("POST", "/v1/tokens", "root", `{"name":"sdk","kind":"e2b"}`)
	if e2b.status != 201 || !regexp.MustCompile(`"secret":"e2b_[0-9a-f]{40}"`).MatchString(e2b.body) || !strings.Contains(e2b.body, `"tenant":""`) {
		t.Fatalf("e2b kind: %d %s", e2b.status, e2b.body)
	}
	for _, c := range []struct {
		body, token string
		status      int
		says        string
	}{
		{`{"name":"acme-ci"}`, "root", 409, "a token named acme-ci exists"},
		{`{"name":"alice"}`, "root", 409, "taken by SANDBOXD_API_TOKENS"},
		{`{"name":"x y"}`, "root", 400, `name \"x y\" is invalid`},
		{`{"name":"x","tenant":"A--"}`, "root", 400, `tenant \"A--\" is invalid`},
		{`{"name":"x","kind":"root"}`, "root", 400, `kind \"root\" is unknown`},
		{`{"name":"x","secret":"mine"}`, "root", 400, "secret"},
		{`{"name":"mine"}`, "alice", 403, "needs an admin token"},
		{`{"name":"mine"}`, made.Secret, 403, "needs an admin token"},
	} {
		got := e.do("POST", "/v1/tokens", c.token, c.body)
		if got.status != c.status || !strings.Contains(got.body, c.says) {
			t.Errorf("POST /v1/tokens %s as %.8s: %d %s, want %d %q", c.body, c.token, got.status, got.body, c.status, c.says)
		}
	}
	list := e.do("GET", "/v1/tokens", "root", "")
	if list.status != 200 || strings.Contains(list.body, made.Secret) || strings.Contains(list.body, `"secret"`) ||
		!strings.Contains(list.body, `{"name":"bob","tenant":"b","source":"env"}`) || !strings.Contains(list.body, `"name":"acme-ci","tenant":"a","kind":"api","source":"api"`) {
		t.Fatalf("list: %s", list.body)
	}
	if got := e.do("DELETE", "/v1/tokens/alice", "root", ""); got.status != 409 {
		t.Errorf("revoke an env token: %d %s", got.status, got.body)
	}
	if got := e.do("DELETE", "/v1/tokens/acme-ci", "root", ""); got.status != 200 || !strings.Contains(got.body, `"revoked":true`) {
		t.Fatalf("revoke: %d %s", got.status, got.body)
	}
	if got := e.do("GET", "/v1/sandboxes", made.Secret, ""); got.status != 401 {
		t.Fatalf("a revoked token: %d %s", got.status, got.body)
	}
	if got := e.do("DELETE", "/v1/tokens/acme-ci", "root", ""); got.status != 404 {
		t.Errorf("revoke twice: %d %s", got.status, got.body)
	}
	audit := e.do("GET", "/v1/audit?limit=1000", "root", "")
	for _, want := range []string{`"action":"POST /v1/tokens","target":"token:acme-ci","detail":"token.create api tenant=a","status":201`,
		`"action":"DELETE /v1/tokens/{name}","target":"token:acme-ci","detail":"","status":200`} {
		if !strings.Contains(audit.body, want) {
			t.Errorf("audit lacks %s: %s", want, audit.body)
		}
	}
	if strings.Contains(audit.body, made.Secret) {
		t.Error("the audit holds a secret")
	}
}

// With tokens required, a call without one or with a wrong one is 401; without any
// environment token (loopback), no token acts as the operator but a wrong one is still 401.
func TestTokenRequired(t *testing.T) {
	t.Parallel()
	e := newTenantEnv(t)
	for _, c := range []struct {
		token  string
		status int
	}{{"", 401}, {"nope", 401}, {"bob", 200}} {
		if got := e.do("GET", "/v1/sandboxes", c.token, ""); got.status != c.status {
			t.Errorf("token %q: %d %s", c.token, got.status, got.body)
		}
	}
	e.keys.SetEnv(nil)
	for _, c := range []struct {
		token  string
		status int
	}{{"", 200}, {"nope", 401}, {"bob", 401}} {
		if got := e.do("GET", "/v1/sandboxes", c.token, ""); got.status != c.status {
			t.Errorf("open API, token %q: %d %s", c.token, got.status, got.body)
		}
	}
}

// The request log names the token that called (it said "operator" whoever did).
func TestRequestLogNamesActor(t *testing.T) {
	t.Parallel()
	e := newTenantEnv(t)
	var mu sync.Mutex
	var buf bytes.Buffer
	e.srv.log = slog.New(slog.NewJSONHandler(&lockedWriter{mu: &mu, w: &buf}, nil))
	e.h = e.srv.Handler()
	e.do("GET", "/v1/sandboxes/a--box", "alice", "")
	e.do("GET", "/v1/sandboxes", "", "")
	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"actor":"alice","tenant":"a"`) || !strings.Contains(lines[1], `"status":401`) ||
		!strings.Contains(lines[1], `"actor":"-"`) {
		t.Fatalf("request log:\n%s", buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
