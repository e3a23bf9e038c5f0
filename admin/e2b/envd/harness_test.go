package envd

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/docker/docker/client"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/filesystem/filesystemconnect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/process/processconnect"
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

var testKey = []byte("0123456789abcdef0123456789abcdef")

// harness is envd over a real lifecycle manager (the engine, the testkit image, a fresh
// network and data dir) behind an httptest server, with one running sandbox.
type harness struct {
	mgr   *lifecycle.Manager
	box   *faultyBox // what envd runs through: the manager, with a fault a test may set
	envd  *Handler
	srv   *httptest.Server
	id    string
	token string
	woke  chan string
}

func newHarness(t *testing.T) *harness {
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
	cfg.Image = dockertest.Testkit
	cfg.InitPath = dockertest.Binary(t, "./cmd/sandbox-init")
	cfg.StopTimeout = time.Second
	cfg.NoFile = 4096
	mgr := lifecycle.New(db, docker, cfg, nil)
	dockertest.CleanupInstance(t, docker, mgr.Instance())
	if err := mgr.Boot(context.Background()); err != nil {
		t.Fatal(err)
	}
	waker := wake.New(mgr)
	t.Cleanup(func() { waker.Close() })
	box := &faultyBox{Manager: mgr, docker: docker}
	h := &harness{mgr: mgr, box: box, envd: New(testKey, box, waker, nil), woke: make(chan string, 10)}
	h.envd.OnWake = func(id string) { h.woke <- id }
	t.Cleanup(h.envd.Close) // after the server: registered first, runs last
	h.srv = httptest.NewServer(h.envd)
	t.Cleanup(h.srv.Close)
	sb, err := mgr.Create(context.Background(), lifecycle.CreateRequest{ID: "envd1", Ports: []int{3000}})
	if err != nil {
		t.Fatal(err)
	}
	h.id, h.token = sb.ID, AccessToken(testKey, sb.ID)
	return h
}

// headers names the sandbox and carries its token, as the SDKs send them.
func (h *harness) headers() http.Header {
	return http.Header{HeaderSandboxID: {h.id}, HeaderAccessToken: {h.token}, HeaderSandboxPort: {"49983"}}
}

// sandboxHeaders adds the harness's headers to every request of a Connect client.
type sandboxHeaders struct {
	h    *harness
	next http.RoundTripper
}

func (s sandboxHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range s.h.headers() {
		r.Header[k] = v
	}
	return s.next.RoundTrip(r)
}

func (h *harness) httpClient() *http.Client {
	return &http.Client{Transport: sandboxHeaders{h, http.DefaultTransport}}
}

// The generated Connect clients, in the binary protobuf codec (Connect's default, and
// what a JS client with useBinaryFormat sends) or JSON (E2B's SDKs).
func (h *harness) process(json bool) processconnect.ProcessClient {
	var opts []connect.ClientOption
	if json {
		opts = append(opts, connect.WithProtoJSON())
	}
	return processconnect.NewProcessClient(h.httpClient(), h.srv.URL, opts...)
}

func (h *harness) filesystem(json bool) filesystemconnect.FilesystemClient {
	var opts []connect.ClientOption
	if json {
		opts = append(opts, connect.WithProtoJSON())
	}
	return filesystemconnect.NewFilesystemClient(h.httpClient(), h.srv.URL, opts...)
}

// within returns a context that ends after d (a bound on a test step, not a sleep).
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// faultyBox is the manager as envd sees it, with a fault a test can set: before an exec
// or terminal whose command before returns true for, once.
type faultyBox struct {
	*lifecycle.Manager
	docker *client.Client
	before atomic.Pointer[func(cmd []string) bool]
}

func (b *faultyBox) fault(cmd []string) {
	if f := b.before.Load(); f != nil && (*f)(cmd) {
		b.before.Store(nil)
	}
}

func (b *faultyBox) ExecStream(ctx context.Context, id string, req lifecycle.ExecRequest, stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
	b.fault(req.Cmd)
	return b.Manager.ExecStream(ctx, id, req, stdout, stderr)
}

func (b *faultyBox) Terminal(ctx context.Context, id string, req lifecycle.TerminalRequest) (lifecycle.Terminal, error) {
	b.fault(req.Cmd)
	return b.Manager.Terminal(ctx, id, req)
}
