package admin

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

type fakePreviews struct {
	SetPreviewsFn func(ctx context.Context, id string, p store.Previews) (store.Sandbox, error)
	MintFn        func(ctx context.Context, id string, port int, ttl time.Duration, embed bool) (lifecycle.PreviewToken, error)
	RevokeFn      func(ctx context.Context, id string) error
}

func (f *fakePreviews) SetPreviews(ctx context.Context, id string, p store.Previews) (store.Sandbox, error) {
	return f.SetPreviewsFn(ctx, id, p)
}
func (f *fakePreviews) MintPreviewToken(ctx context.Context, id string, port int, ttl time.Duration, embed bool) (lifecycle.PreviewToken, error) {
	return f.MintFn(ctx, id, port, ttl, embed)
}
func (f *fakePreviews) RevokePreviewTokens(ctx context.Context, id string) error {
	return f.RevokeFn(ctx, id)
}

var _ Previews = (*fakePreviews)(nil)

type auditLog struct {
	mu   sync.Mutex
	rows []store.Audit
}

func (a *auditLog) AppendAudit(_ context.Context, r store.Audit) error {
	a.mu.Lock()
	a.rows = append(a.rows, r)
	a.mu.Unlock()
	return nil
}

// only "a" exists, as far as the routes' lookup (Sandboxes.Get) goes.
func onlyA(ctx context.Context, id string) (store.Sandbox, error) {
	if id != "a" {
		return store.Sandbox{}, &lifecycle.Error{Code: lifecycle.CodeNotFound, Message: "sandbox " + id + " not found"}
	}
	return store.Sandbox{ID: id, Status: store.StatusRunning, Ports: []int{3000}}, nil
}

func TestMintPreviewToken(t *testing.T) {
	t.Parallel()
	exp := time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)
	var asked []string
	audit := &auditLog{}
	d := Deps{
		Sandboxes: &fakeSandboxes{GetFn: onlyA},
		Audit:     audit,
		Previews: &fakePreviews{MintFn: func(_ context.Context, id string, port int, ttl time.Duration, embed bool) (lifecycle.PreviewToken, error) {
			asked = append(asked, id+" "+ttl.String())
			if port != 3000 {
				return lifecycle.PreviewToken{}, &lifecycle.Error{Code: lifecycle.CodeInvalid, Message: "port 3001 is not declared for sandbox a; its ports are 3000"}
			}
			return lifecycle.PreviewToken{Token: "TOKEN", Port: port, Expires: exp}, nil
		}},
	}
	s := New(d, nil)
	s.PreviewURL = func(id string, port int) string { return "http://s-" + id + "-3000.preview.localhost:8080" }

	code, body, _ := serverCall(t, s, "POST", "/v1/sandboxes/a/preview-tokens", `{"port":3000,"ttl":"90m","embed":true}`)
	var got map[string]any
	json.Unmarshal([]byte(body), &got)
	want := map[string]any{"token": "TOKEN", "url": "http://s-a-3000.preview.localhost:8080/?sandboxd_token=TOKEN", "expires_at": "2030-01-01T01:00:00Z"}
	if code != 201 || !reflect.DeepEqual(got, want) {
		t.Fatalf("mint = %d %s", code, body)
	}
	if len(audit.rows) != 1 || audit.rows[0].Action != "POST /v1/sandboxes/{id}/preview-tokens" ||
		!strings.HasPrefix(audit.rows[0].Detail, "preview_token.create") || strings.Contains(audit.rows[0].Detail, "TOKEN") {
		t.Fatalf("audit %+v: want one preview_token.create without the token", audit.rows)
	}

	for _, c := range []struct {
		name, path, body string
		status           int
		text             string
	}{
		{"no port", "/v1/sandboxes/a/preview-tokens", `{"ttl":"1h"}`, 400, "port is required"},
		{"no body", "/v1/sandboxes/a/preview-tokens", ``, 400, "body is empty"},
		{"bad ttl", "/v1/sandboxes/a/preview-tokens", `{"port":3000,"ttl":"soon"}`, 400, "ttl"},
		{"unknown field", "/v1/sandboxes/a/preview-tokens", `{"port":3000,"path":"/"}`, 400, "path"},
		{"undeclared port", "/v1/sandboxes/a/preview-tokens", `{"port":3001}`, 400, "not declared"},
		{"another sandbox", "/v1/sandboxes/b/preview-tokens", `{"port":3000}`, 404, "not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body, e := serverCall(t, s, "POST", c.path, c.body)
			if code != c.status || !strings.Contains(e.Error.Message, c.text) {
				t.Fatalf("%d %s, want %d saying %q", code, body, c.status, c.text)
			}
		})
	}
	// Only the good request and the undeclared port reached lifecycle; "b" was answered by
	// the lookup every route shares, which tenant scoping goes through.
	if strings.Join(asked, ",") != "a 1h30m0s,a 0s" {
		t.Fatalf("mints asked: %q", asked)
	}
}

func TestPutPreviews(t *testing.T) {
	t.Parallel()
	var set []store.Previews
	d := Deps{
		Sandboxes: &fakeSandboxes{GetFn: onlyA},
		Previews: &fakePreviews{SetPreviewsFn: func(_ context.Context, id string, p store.Previews) (store.Sandbox, error) {
			set = append(set, p)
			if p.Access == "" {
				p.Access = store.AccessPrivate
			}
			return store.Sandbox{ID: id, Status: store.StatusRunning, Ports: []int{3000}, Previews: p}, nil
		}},
	}
	code, body, _ := apiCall(t, d, "PUT", "/v1/sandboxes/a/previews", `{"access":"private","ports":{"3000":"public"}}`)
	var v struct {
		Previews previewsView `json:"previews"`
	}
	json.Unmarshal([]byte(body), &v)
	if code != 200 || v.Previews.Access != "private" || v.Previews.Ports["3000"] != "public" {
		t.Fatalf("PUT = %d %s", code, body)
	}
	if want := (store.Previews{Access: "private", Ports: map[int]string{3000: "public"}}); !reflect.DeepEqual(set[0], want) {
		t.Fatalf("set %+v, want %+v", set[0], want)
	}
	for _, c := range []struct{ body, text string }{
		{`{"ports":{"web":"public"}}`, `previews.ports: "web" is not a port number`},
		{`{"ports":{"03000":"public"}}`, `"03000" is not a port number`},
		{`{"ports":{"70000":"public"}}`, `"70000" is not a port number`},
		{`{"access":1}`, "access"},
	} {
		code, body, e := apiCall(t, d, "PUT", "/v1/sandboxes/a/previews", c.body)
		if code != 400 || !strings.Contains(e.Error.Message, c.text) {
			t.Errorf("%s = %d %s, want 400 saying %q", c.body, code, body, c.text)
		}
	}
	if len(set) != 1 {
		t.Fatalf("bad bodies reached lifecycle: %+v", set[1:])
	}
}

func TestRevokePreviewTokens(t *testing.T) {
	t.Parallel()
	var revoked []string
	d := Deps{
		Sandboxes: &fakeSandboxes{GetFn: onlyA},
		Previews:  &fakePreviews{RevokeFn: func(_ context.Context, id string) error { revoked = append(revoked, id); return nil }},
	}
	if code, body, _ := apiCall(t, d, "POST", "/v1/sandboxes/a/preview-tokens/revoke", ""); code != 200 || body != `{"id":"a","revoked":true}`+"\n" {
		t.Fatalf("revoke = %d %q", code, body)
	}
	if code, _, _ := apiCall(t, d, "POST", "/v1/sandboxes/b/preview-tokens/revoke", ""); code != 404 {
		t.Fatalf("revoke b = %d", code)
	}
	if strings.Join(revoked, ",") != "a" {
		t.Fatalf("revoked %q", revoked)
	}
}

// "previews" in a create body, and the prior system's "visibility", which is its access.
func TestCreatePreviews(t *testing.T) {
	t.Parallel()
	var got []store.Previews
	d := Deps{Sandboxes: &fakeSandboxes{CreateFn: func(_ context.Context, req lifecycle.CreateRequest) (store.Sandbox, error) {
		got = append(got, req.Previews)
		return store.Sandbox{ID: "x", Previews: req.Previews}, nil
	}}}
	for _, c := range []struct {
		body   string
		status int
		want   store.Previews
		text   string
	}{
		{`{"previews":{"access":"private","ports":{"3000":"public"}}}`, 201, store.Previews{Access: "private", Ports: map[int]string{3000: "public"}}, ""},
		{`{"visibility":"private"}`, 201, store.Previews{Access: "private"}, ""},
		{`{"visibility":"public","previews":{"access":"public"}}`, 201, store.Previews{Access: "public"}, ""},
		{`{}`, 201, store.Previews{}, ""},
		{`{"visibility":"secret"}`, 400, store.Previews{}, `visibility must be "public" or "private"; got "secret"`},
		{`{"visibility":"public","previews":{"access":"private"}}`, 400, store.Previews{}, "disagree"},
	} {
		got = nil
		code, body, e := apiCall(t, d, "POST", "/v1/sandboxes", c.body)
		if code != c.status {
			t.Errorf("%s = %d %s", c.body, code, body)
			continue
		}
		if c.status != 201 {
			if !strings.Contains(e.Error.Message, c.text) || len(got) != 0 {
				t.Errorf("%s: %q (create called %d times)", c.body, e.Error.Message, len(got))
			}
			continue
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], c.want) {
			t.Errorf("%s: create asked for %+v, want %+v", c.body, got, c.want)
		}
	}
}
