package admin

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/sandboxd/sandboxd/admin/apikey"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/files"
	"github.com/sandboxd/sandboxd/lifecycle/task"
	"github.com/sandboxd/sandboxd/store"
)

// spy is every dependency of the API at once. It knows a few sandboxes (Get and List
// answer from them) and records every call; every other method answers unavailable.
// A call recorded beyond Get is a handler that ran.
type spy struct {
	mu        sync.Mutex
	sandboxes map[string]store.Sandbox
	calls     []string
}

func newSpy(sbs ...store.Sandbox) *spy {
	s := &spy{sandboxes: map[string]store.Sandbox{}}
	for _, sb := range sbs {
		s.sandboxes[sb.ID] = sb
	}
	return s
}

func (s *spy) call(name, id string) {
	s.mu.Lock()
	s.calls = append(s.calls, name+" "+id)
	s.mu.Unlock()
}

// took returns and forgets the calls so far.
func (s *spy) took() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

var errSpy = &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "spy"}

func (s *spy) Create(ctx context.Context, req lifecycle.CreateRequest) (store.Sandbox, error) {
	s.call("Create", req.ID)
	return store.Sandbox{}, errSpy
}
func (s *spy) Get(ctx context.Context, id string) (store.Sandbox, error) {
	s.call("Get", id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb, ok := s.sandboxes[id]; ok {
		return sb, nil
	}
	return store.Sandbox{}, &lifecycle.Error{Code: lifecycle.CodeNotFound, Message: "sandbox " + id + " not found"}
}
func (s *spy) List(ctx context.Context, o store.ListOptions) ([]store.Sandbox, error) {
	s.call("List", o.Tenant)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Sandbox
	for _, sb := range s.sandboxes {
		if o.Tenant == "" || sb.Tenant == o.Tenant {
			out = append(out, sb)
		}
	}
	slices.SortFunc(out, func(a, b store.Sandbox) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
func (s *spy) Stop(ctx context.Context, id string) error   { s.call("Stop", id); return errSpy }
func (s *spy) Delete(ctx context.Context, id string) error { s.call("Delete", id); return errSpy }
func (s *spy) Purge(ctx context.Context, id string) error  { s.call("Purge", id); return errSpy }
func (s *spy) Pause(ctx context.Context, id string) error  { s.call("Pause", id); return errSpy }
func (s *spy) Keepalive(ctx context.Context, id string, until time.Time) (store.Sandbox, error) {
	s.call("Keepalive", id)
	return store.Sandbox{}, errSpy
}
func (s *spy) Images(ctx context.Context) ([]lifecycle.ImageInfo, error) {
	s.call("Images", "")
	return []lifecycle.ImageInfo{{Image: "base", Default: true}, {Image: "img-a"}, {Image: "img-b"}}, nil
}
func (s *spy) Exec(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.ExecResult, error) {
	s.call("Exec", id)
	return lifecycle.ExecResult{}, errSpy
}
func (s *spy) ExecStream(ctx context.Context, id string, req lifecycle.ExecRequest, stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
	s.call("ExecStream", id)
	return lifecycle.ExecStatus{}, errSpy
}
func (s *spy) ExecDetached(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.DetachedExec, error) {
	s.call("ExecDetached", id)
	return lifecycle.DetachedExec{}, errSpy
}
func (s *spy) DetachedStatus(ctx context.Context, id, execID string) (lifecycle.DetachedExec, error) {
	s.call("DetachedStatus", id)
	return lifecycle.DetachedExec{}, errSpy
}
func (s *spy) DetachedOutput(ctx context.Context, id, execID string) (io.ReadSeekCloser, time.Time, error) {
	s.call("DetachedOutput", id)
	return nil, time.Time{}, errSpy
}
func (s *spy) Terminal(ctx context.Context, id string, req lifecycle.TerminalRequest) (lifecycle.Terminal, error) {
	s.call("Terminal", id)
	return nil, errSpy
}
func (s *spy) Workspace(ctx context.Context, id string) (*files.Workspace, error) {
	s.call("Workspace", id)
	return nil, errSpy
}
func (s *spy) SetServices(ctx context.Context, id string, services []store.Service) (store.Sandbox, error) {
	s.call("SetServices", id)
	return store.Sandbox{}, errSpy
}
func (s *spy) Services(ctx context.Context, id string) ([]lifecycle.ServiceState, error) {
	s.call("Services", id)
	return nil, errSpy
}
func (s *spy) StartTask(ctx context.Context, id string, req task.Request) (store.Task, error) {
	s.call("StartTask", id)
	return store.Task{}, errSpy
}
func (s *spy) CancelTask(ctx context.Context, id, taskID string) (store.Task, error) {
	s.call("CancelTask", id)
	return store.Task{}, errSpy
}
func (s *spy) GetTask(ctx context.Context, id, taskID string) (store.Task, error) {
	s.call("GetTask", id)
	return store.Task{}, errSpy
}
func (s *spy) ListTasks(ctx context.Context, id string, limit int) ([]store.Task, error) {
	s.call("ListTasks", id)
	return nil, errSpy
}
func (s *spy) TaskEvents(ctx context.Context, taskID string, after int64, limit int) ([]store.TaskEvent, <-chan struct{}, error) {
	s.call("TaskEvents", taskID)
	return nil, nil, errSpy
}
func (s *spy) Ping(ctx context.Context) error { s.call("Ping", ""); return nil }
func (s *spy) SetNetwork(ctx context.Context, id, egress string, allow []string) (store.Sandbox, error) {
	s.call("SetNetwork", id) // issue 15
	return store.Sandbox{}, errSpy
}
func (s *spy) SetPreviews(ctx context.Context, id string, p store.Previews) (store.Sandbox, error) {
	s.call("SetPreviews", id)
	return store.Sandbox{}, errSpy
}
func (s *spy) MintPreviewToken(ctx context.Context, id string, port int, ttl time.Duration, embed bool) (lifecycle.PreviewToken, error) {
	s.call("MintPreviewToken", id)
	return lifecycle.PreviewToken{}, errSpy
}
func (s *spy) RevokePreviewTokens(ctx context.Context, id string) error {
	s.call("RevokePreviewTokens", id)
	return errSpy
}
func (s *spy) Wake(ctx context.Context, id string, port int) (netip.AddrPort, error) {
	s.call("Wake", id)
	return netip.AddrPort{}, errSpy
}

// tenantEnv is the API over a spy holding a sandbox of tenant a, one of tenant b and one
// of the operator, with real stored tokens and a real audit log in SQLite.
type tenantEnv struct {
	spy  *spy
	db   *store.DB
	keys *apikey.Keys
	srv  *Server
	h    http.Handler
}

// The environment's tokens: their secrets are their names.
var tenantTokens = []apikey.Token{
	{Name: "root", Secret: "root"},
	{Name: "alice", Secret: "alice", Tenant: "a"},
	{Name: "bob", Secret: "bob", Tenant: "b"},
}

func newTenantEnv(t *testing.T) *tenantEnv {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sp := newSpy(
		store.Sandbox{ID: "a--box", Tenant: "a", Status: store.StatusRunning, Image: "img-a"},
		store.Sandbox{ID: "b--box", Tenant: "b", Status: store.StatusRunning, Image: "img-b"},
		store.Sandbox{ID: "opbox", Status: store.StatusRunning, Image: "base"},
	)
	keys := apikey.New(db)
	keys.SetEnv(tenantTokens)
	srv := New(Deps{Sandboxes: sp, Execs: sp, Detached: sp, Terminals: sp, Workspaces: sp, Services: sp, Tasks: sp,
		Health: sp, Waker: sp, Audit: db, Keys: keys, Tokens: db, AuditLog: db, Previews: sp, Networks: sp}, nil)
	return &tenantEnv{spy: sp, db: db, keys: keys, srv: srv, h: srv.Handler()}
}

type answered struct {
	status int
	body   string
	header http.Header
}

// do serves one request in memory (an httptest server per call would cost a listener).
func (e *tenantEnv) do(method, path, token, body string) answered {
	r, _ := http.NewRequest(method, "http://127.0.0.1:9090"+path, strings.NewReader(body))
	r.Host = "127.0.0.1:9090"
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return answered{w.Code, w.Body.String(), w.Header()}
}

// route is one method of one route of the API, as the router lists it.
type route struct{ method, tmpl string }

// apiRoutes walks the router: a route added later is in the list without anyone adding it.
func apiRoutes(t *testing.T, s *Server) []route {
	t.Helper()
	var out []route
	err := s.router().Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tmpl, err := r.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := r.GetMethods()
		if err != nil {
			return err
		}
		for _, m := range methods {
			out = append(out, route{m, tmpl})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var pathVar = regexp.MustCompile(`\{[^}]+\}`)

// path fills a template: {id} with id, every other variable with a well-formed value.
func (rt route) path(id string) string {
	return pathVar.ReplaceAllStringFunc(rt.tmpl, func(v string) string {
		if v == "{id}" {
			return id
		}
		return "01jaaaaaaaaaaaaaaaaaaaaaaa"
	})
}

// Tenant a against every route of tenant b's sandbox: 404, byte for byte the answer for a
// sandbox that does not exist, and no handler runs (the spy sees only the scope's Get), so
// nothing changes. Its own sandbox's routes do reach their handlers, and so does an admin
// on b's: the 404 is the scope's doing, not a broken route.
func TestTenantCannotReachAnotherTenantsSandbox(t *testing.T) {
	t.Parallel()
	e := newTenantEnv(t)
	n := 0
	for _, rt := range apiRoutes(t, e.srv) {
		if !strings.Contains(rt.tmpl, "{id}") {
			continue
		}
		n++
		name := rt.method + " " + rt.tmpl
		e.spy.took()
		foreign := e.do(rt.method, rt.path("b--box"), "alice", "{}")
		if calls := e.spy.took(); foreign.status != http.StatusNotFound || !slices.Equal(calls, []string{"Get b--box"}) {
			t.Errorf("%s on b's sandbox as a: %d %s; calls %q", name, foreign.status, foreign.body, calls)
		}
		operators := e.do(rt.method, rt.path("opbox"), "alice", "{}")
		if calls := e.spy.took(); operators.body != strings.ReplaceAll(foreign.body, "b--box", "opbox") || !slices.Equal(calls, []string{"Get opbox"}) {
			t.Errorf("%s on the operator's sandbox as a: %d %s; calls %q", name, operators.status, operators.body, calls)
		}
		for _, ghost := range []string{"b--ghost", "a--ghost", "ghost"} {
			missing := e.do(rt.method, rt.path(ghost), "alice", "{}")
			want := strings.ReplaceAll(foreign.body, "b--box", ghost)
			if missing.status != foreign.status || missing.body != want || missing.header.Get("Content-Type") != foreign.header.Get("Content-Type") {
				t.Errorf("%s: b's sandbox answers %d %q, a missing one %d %q", name, foreign.status, foreign.body, missing.status, missing.body)
			}
		}
		e.spy.took()
		own := e.do(rt.method, rt.path("a--box"), "alice", "{}")
		if calls := e.spy.took(); own.status == http.StatusNotFound && len(calls) < 2 {
			t.Errorf("%s on a's own sandbox did not reach its handler: %d %s; calls %q", name, own.status, own.body, calls)
		}
		admin := e.do(rt.method, rt.path("b--box"), "root", "{}")
		if calls := e.spy.took(); admin.status == http.StatusNotFound && len(calls) < 2 {
			t.Errorf("%s on b's sandbox as admin did not reach its handler: %d %s; calls %q", name, admin.status, admin.body, calls)
		}
	}
	if n < 20 {
		t.Fatalf("only %d routes name a sandbox: the walk lost some", n)
	}
	// What tenant b finds afterwards is what it had: the spy saw no change, and b's
	// sandbox answers b as before.
	if got := e.do("GET", "/v1/sandboxes/b--box", "bob", ""); got.status != 200 || !strings.Contains(got.body, `"tenant":"b"`) {
		t.Fatalf("b reads its sandbox: %d %s", got.status, got.body)
	}
}

// Routes that name no sandbox: a tenant reaches only those listed in tenantRoutes; the
// rest (tokens, audit, metrics, any added later) answer 403.
func TestTenantRoutesWithoutSandbox(t *testing.T) {
	t.Parallel()
	e := newTenantEnv(t)
	for _, rt := range apiRoutes(t, e.srv) {
		if strings.Contains(rt.tmpl, "{id}") || openPaths[rt.tmpl] {
			continue
		}
		got := e.do(rt.method, rt.path(""), "alice", "{}")
		switch {
		case tenantRoutes[rt.tmpl]:
			if got.status == http.StatusForbidden {
				t.Errorf("%s %s refused to a tenant: %s", rt.method, rt.tmpl, got.body)
			}
		case got.status != http.StatusForbidden || !strings.Contains(got.body, "needs an admin token"):
			t.Errorf("%s %s as a tenant: %d %s, want 403", rt.method, rt.tmpl, got.status, got.body)
		}
	}
}

// Listings show a tenant its own sandboxes and images; an admin sees all, or a tenant's
// with ?tenant=. Creates are the caller's tenant's.
func TestTenantListsAndCreates(t *testing.T) {
	t.Parallel()
	e := newTenantEnv(t)
	ids := func(body string) []string {
		m := regexp.MustCompile(`"id":"([^"]+)"`).FindAllStringSubmatch(body, -1)
		var out []string
		for _, x := range m {
			out = append(out, x[1])
		}
		return out
	}
	for _, c := range []struct {
		path, token string
		want        []string
	}{
		{"/v1/sandboxes", "alice", []string{"a--box"}},
		{"/sandboxes", "bob", []string{"b--box"}},
		{"/v1/sandboxes?tenant=a", "alice", []string{"a--box"}},
		{"/v1/sandboxes", "root", []string{"a--box", "b--box", "opbox"}},
		{"/v1/sandboxes?tenant=b", "root", []string{"b--box"}},
	} {
		got := e.do("GET", c.path, c.token, "")
		if got.status != 200 || !slices.Equal(ids(got.body), c.want) {
			t.Errorf("GET %s as %s: %d %v, want %v", c.path, c.token, got.status, ids(got.body), c.want)
		}
	}
	if got := e.do("GET", "/v1/sandboxes?tenant=b", "alice", ""); got.status != 400 || !strings.Contains(got.body, `tenant \"b\" is not yours`) {
		t.Errorf("a lists b's: %d %s", got.status, got.body)
	}
	if got := e.do("GET", "/v1/sandboxes?tenant=B--", "root", ""); got.status != 400 {
		t.Errorf("a malformed tenant filter: %d %s", got.status, got.body)
	}
	got := e.do("GET", "/v1/images", "alice", "")
	if got.status != 200 || !strings.Contains(got.body, `"img-a"`) || strings.Contains(got.body, `"img-b"`) || !strings.Contains(got.body, `"base"`) {
		t.Errorf("a's images: %s", got.body)
	}

	var asked []lifecycle.CreateRequest
	var mu sync.Mutex
	e2 := newTenantEnv(t)
	cr := &fakeSandboxes{CreateFn: func(ctx context.Context, req lifecycle.CreateRequest) (store.Sandbox, error) {
		mu.Lock()
		asked = append(asked, req)
		mu.Unlock()
		return store.Sandbox{ID: "x", Tenant: req.Tenant}, nil
	}}
	s := New(Deps{Sandboxes: cr, Keys: e2.keys, Audit: e2.db}, nil)
	e2.h = s.Handler()
	for _, c := range []struct {
		token, body string
		status      int
		tenant      string
	}{
		{"alice", `{"id":"a--app"}`, 201, "a"},
		{"alice", `{"tenant":"a"}`, 201, "a"},
		{"alice", `{"tenant":"b"}`, 400, ""},
		{"root", `{"tenant":"b","id":"b--x"}`, 201, "b"},
		{"root", `{}`, 201, ""},
	} {
		before := len(asked)
		got := e2.do("POST", "/v1/sandboxes", c.token, c.body)
		if got.status != c.status {
			t.Errorf("create %s as %s: %d %s", c.body, c.token, got.status, got.body)
			continue
		}
		if c.status == 201 && (len(asked) != before+1 || asked[len(asked)-1].Tenant != c.tenant) {
			t.Errorf("create %s as %s reached the manager as %+v", c.body, c.token, asked[before:])
		}
		if c.status != 201 && len(asked) != before {
			t.Errorf("a refused create reached the manager")
		}
	}
}

// Every call of a mutating route leaves one audit line with the right actor, tenant,
// action, target, status and request id, whether it succeeded or was refused; reads
// leave none. The routes come from the router, so a new one is covered as it is added.
func TestAuditLineForEveryMutatingRoute(t *testing.T) {
	t.Parallel()
	e := newTenantEnv(t)
	ctx := context.Background()
	count := func() int {
		all, err := e.db.ListAudit(ctx, store.AuditQuery{Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	mutatingRoutes := 0
	writes := map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true}
	for _, rt := range apiRoutes(t, e.srv) {
		if openPaths[rt.tmpl] {
			continue
		}
		token, tenant, id := "alice", "a", "a--box"
		if !strings.Contains(rt.tmpl, "{id}") && !tenantRoutes[rt.tmpl] {
			token, tenant = "root", ""
		}
		for _, c := range []struct{ token, tenant, id string }{{token, tenant, id}, {"alice", "a", "b--box"}} {
			if c.id == "b--box" && !strings.Contains(rt.tmpl, "{id}") {
				continue
			}
			before := count()
			got := e.do(rt.method, rt.path(c.id), c.token, "{}")
			lines, _ := e.db.ListAudit(ctx, store.AuditQuery{Limit: 100000})
			name := rt.method + " " + rt.tmpl + " as " + c.token + " on " + c.id
			if !writes[rt.method] {
				if len(lines) != before {
					t.Errorf("%s (a read) was audited: %+v", name, lines[before:])
				}
				continue
			}
			mutatingRoutes++
			if len(lines) != before+1 {
				t.Errorf("%s: %d audit lines, want 1", name, len(lines)-before)
				continue
			}
			l := lines[before]
			wantTarget := ""
			if strings.Contains(rt.tmpl, "{id}") {
				wantTarget = c.id
			} else if strings.Contains(rt.tmpl, "{name}") {
				wantTarget = "token:01jaaaaaaaaaaaaaaaaaaaaaaa"
			}
			wantResult := "ok"
			if got.status >= 400 {
				wantResult = regexp.MustCompile(`"code":"([^"]+)"`).FindStringSubmatch(got.body)[1]
			}
			if l.Actor != c.token || l.Tenant != c.tenant || l.Action != rt.method+" "+canonicalRoute(rt.tmpl) ||
				l.Status != got.status || l.Result != wantResult || l.RequestID != got.header.Get("X-Request-Id") ||
				l.RequestID == "" || l.At.IsZero() || (wantTarget != "" && l.Target != wantTarget) {
				t.Errorf("%s answered %d %s; audited as %+v", name, got.status, got.body, l)
			}
		}
	}
	if mutatingRoutes < 20 {
		t.Fatalf("only %d mutating calls: the walk lost routes", mutatingRoutes)
	}
	// The log reads back through the API, for admins only.
	got := e.do("GET", "/v1/audit?sandbox=b--box&tenant=a&limit=2", "root", "")
	if got.status != 200 || strings.Count(got.body, `"actor":"alice"`) != 2 || !strings.Contains(got.body, `"result":"not_found"`) ||
		!strings.Contains(got.body, `"next_cursor":"`) || strings.Contains(got.body, `"next_cursor":""`) {
		t.Errorf("GET /v1/audit: %d %s", got.status, got.body)
	}
	for _, bad := range []string{"since=yesterday", "limit=0", "sandbox=..%2F", "cursor=x", "tenant=A"} {
		if got := e.do("GET", "/v1/audit?"+bad, "root", ""); got.status != 400 {
			t.Errorf("GET /v1/audit?%s: %d %s", bad, got.status, got.body)
		}
	}
}

// What a caller writes into an audit line is cut to size: the log is bounded in rows and
// in bytes.
func TestAuditDetailIsBounded(t *testing.T) {
	t.Parallel()
	e := newTenantEnv(t)
	long := strings.Repeat("é", 5000)
	e.h = New(Deps{Sandboxes: &fakeSandboxes{GetFn: running}, Waker: &fakeWaker{WakeFn: awake}, Audit: e.db, Keys: e.keys,
		Execs: &fakeExecs{ExecFn: func(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.ExecResult, error) {
			return lifecycle.ExecResult{}, nil
		}}}, nil).Handler()
	got := e.do("POST", "/v1/sandboxes/a--box/exec", "root", `{"cmd":["`+long+`"]}`)
	lines, _ := e.db.ListAudit(context.Background(), store.AuditQuery{Target: "a--box"})
	if len(lines) != 1 || len(lines[0].Detail) > maxAuditDetail || !strings.HasPrefix(lines[0].Detail, "sandbox.exec éé") ||
		!strings.HasSuffix(lines[0].Detail, "é…") {
		t.Fatalf("exec answered %d; audit %+v", got.status, lines)
	}
	e.h = e.srv.Handler()
	got = e.do("DELETE", "/v1/tokens/"+strings.Repeat("x", 3000), "root", "")
	lines, _ = e.db.ListAudit(context.Background(), store.AuditQuery{Limit: 1000})
	if l := lines[len(lines)-1]; got.status != 404 || len(l.Target) > maxAuditTarget || !strings.HasPrefix(l.Target, "token:xxx") {
		t.Fatalf("delete answered %d; audit %+v", got.status, l)
	}
}
