package e2b

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/edge"
	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
	"github.com/sandboxd/sandboxd/store"
	"github.com/sandboxd/sandboxd/wake"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dockertest.RemoveBuilt()
	os.Exit(code)
}

const testAPIKey = "e2b_00000000000000000000000000000000000000aa"

// Two tenants' keys, beside the operator's testAPIKey.
const (
	acmeKey = "e2b_00000000000000000000000000000000000000ac"
	betaKey = "e2b_00000000000000000000000000000000000000be"
)

// keys is an Authenticator of fixed secrets.
type keys map[string]Principal

func (k keys) Authenticate(_ context.Context, secret string) (Principal, error) {
	p, ok := k[secret]
	if !ok {
		return Principal{}, ErrUnknownKey
	}
	return p, nil
}

// stopStart is the Pauser cmd/sandboxd wires until sandboxd pauses for real.
type stopStart struct {
	m *lifecycle.Manager
	w *wake.Waker
}

func (p stopStart) Pause(ctx context.Context, id string) error { return p.m.Stop(ctx, id) }
func (p stopStart) Resume(ctx context.Context, id string) (bool, error) {
	if _, ok := p.m.Running(id); ok {
		return false, nil
	}
	_, err := p.w.Wake(ctx, id, 0)
	return err == nil, err
}

// audits records the audit log.
type audits struct {
	mu   sync.Mutex
	list []store.Audit
}

func (a *audits) AppendAudit(_ context.Context, x store.Audit) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, x)
	return nil
}

func (a *audits) actions() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, x := range a.list {
		out = append(out, x.Actor+" "+x.Action)
	}
	return out
}

// stack is the E2B listener over a real manager (engine, testkit image as the default
// image), and an edge whose envd port is the listener's envd.
type stack struct {
	mgr    *lifecycle.Manager
	srv    *Server
	api    *httptest.Server
	edge   *httptest.Server
	audits *audits
}

func newStack(t *testing.T) *stack {
	t.Helper()
	docker := dockertest.Client(t)
	data := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(data, "sandboxd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := lifecycle.DefaultConfig(data)
	cfg.Network = dockertest.Network(t, docker)
	cfg.InternalNetwork = dockertest.InternalNetwork(cfg.Network) // egress none for allow_internet_access false
	cfg.Image = dockertest.Testkit
	cfg.InitPath = dockertest.Binary(t, "./cmd/sandbox-init")
	cfg.StopTimeout = time.Second
	cfg.NoFile = 4096
	mgr := lifecycle.New(db, docker, cfg, nil)
	dockertest.CleanupInstance(t, docker, mgr.Instance())
	table := edge.NewTable()
	mgr.Routes = tableRoutes{table}
	if err := mgr.Boot(context.Background()); err != nil {
		t.Fatal(err)
	}
	waker := wake.New(mgr)
	waker.Dial = (&edge.Dialer{RelayPort: initproto.RelayPort}).DialContext
	t.Cleanup(func() { waker.Close() })
	key, err := LoadKey(filepath.Join(data, "e2b.key"))
	if err != nil {
		t.Fatal(err)
	}
	st := &stack{mgr: mgr, audits: &audits{}}
	st.srv = New(mgr, waker, stopStart{mgr, waker}, keys{testAPIKey: {Actor: "tester"}, acmeKey: {Actor: "a", Tenant: "acme"}, betaKey: {Actor: "b", Tenant: "beta"}}, key, slog.New(slog.DiscardHandler))
	st.srv.Domain = "preview.test"
	st.srv.Audit = st.audits
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); st.srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran })
	st.api = httptest.NewServer(st.srv.Handler())
	t.Cleanup(st.api.Close)
	e := edge.NewServer("test", table, waker, nil)
	e.RelayPort = initproto.RelayPort
	e.Envd = st.srv.Envd()
	st.edge = httptest.NewServer(e)
	t.Cleanup(st.edge.Close)
	return st
}

// tableRoutes feeds lifecycle's routes to the edge's table (cmd/sandboxd's routes).
type tableRoutes struct{ t *edge.Table }

func (r tableRoutes) SetRoute(lr lifecycle.Route) {
	state := edge.Asleep
	if lr.Status == store.StatusRunning {
		state = edge.Running
	}
	r.t.Set(edge.Route{ID: lr.ID, State: state, Addr: lr.IP, Ports: lr.Ports, Bytes: lr.Bytes})
}
func (r tableRoutes) DeleteRoute(id string) { r.t.Delete(id) }

// call sends a control-plane request with the API key and decodes a JSON answer into out.
func (st *stack) call(t *testing.T, method, path, body string, out any, hdr ...string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, st.api.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", testAPIKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %q is not JSON: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// e2bError is E2B's error answer.
type e2bError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// wantError checks a failed call's status and E2B's {"code","message"} body.
func (st *stack) wantError(t *testing.T, method, path, body string, status int) {
	t.Helper()
	var e e2bError
	code, _ := st.call(t, method, path, body, &e)
	if code != status || e.Code != status || e.Message == "" {
		t.Errorf("%s %s %s: %d %+v, want %d", method, path, body, code, e, status)
	}
}
