// Package admin is sandboxd's REST API: thin handlers over lifecycle, bearer-token auth,
// JSON errors. Every route is listed in routes.go.
package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/oklog/ulid/v2"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/files"
	"github.com/sandboxd/sandboxd/store"
)

// Sandboxes is what the API needs from the lifecycle manager.
type Sandboxes interface {
	Create(ctx context.Context, req lifecycle.CreateRequest) (store.Sandbox, error)
	Get(ctx context.Context, id string) (store.Sandbox, error)
	List(ctx context.Context, o store.ListOptions) ([]store.Sandbox, error)
	Stop(ctx context.Context, id string) error
	Delete(ctx context.Context, id string) error
	Purge(ctx context.Context, id string) error
	Exec(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.ExecResult, error)
	Keepalive(ctx context.Context, id string, until time.Time) (store.Sandbox, error)
	Ping(ctx context.Context) error

	// Streaming, detached and interactive commands.
	ExecStream(ctx context.Context, id string, req lifecycle.ExecRequest, stdout, stderr io.Writer) (lifecycle.ExecStatus, error)
	ExecDetached(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.DetachedExec, error)
	DetachedStatus(ctx context.Context, id, execID string) (lifecycle.DetachedExec, error)
	DetachedOutput(ctx context.Context, id, execID string) (io.ReadSeekCloser, time.Time, error)
	Terminal(ctx context.Context, id string, req lifecycle.TerminalRequest) (lifecycle.Terminal, error)

	// Files: the workspace, whether or not the sandbox runs.
	Workspace(ctx context.Context, id string) (*files.Workspace, error)

	// Services that sandbox-init keeps running.
	SetServices(ctx context.Context, id string, services []store.Service) (store.Sandbox, error)
	Services(ctx context.Context, id string) ([]lifecycle.ServiceState, error)

	// Images and the coding agents each carries.
	Images(ctx context.Context) ([]lifecycle.ImageInfo, error)

	// Busy marks work in flight on a sandbox (activity) until done is called.
	Busy(id string) (done func())
}

// Waker brings a sandbox up; admin uses the edge's waker so starts share its admission.
type Waker interface {
	Wake(ctx context.Context, id string, port int) (netip.AddrPort, error)
}

// Auditor records who changed what.
type Auditor interface {
	AppendAudit(ctx context.Context, a store.Audit) error
}

// Server is the admin API. Construct with New; the exported fields are optional.
type Server struct {
	// Tokens maps a bearer secret to its name. Empty means no auth (loopback only, or the
	// operator opted out).
	Tokens map[string]string
	// PreviewURL formats the preview URL of a sandbox port; nil omits preview URLs.
	PreviewURL func(id string, port int) string
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tasks runs coding agents (tasks.go); nil answers the task routes as unavailable.
	Tasks Tasks

	sandboxes Sandboxes
	waker     Waker
	audit     Auditor
	log       *slog.Logger

	// LoopbackOnly, set when the API has no tokens and listens on loopback, refuses
	// requests whose Host is not a loopback name: a DNS-rebinding page cannot borrow the
	// browser of someone on the host.
	LoopbackOnly bool

	tokensMu sync.RWMutex
	sockets  sockets
	stopping chan struct{} // closed by CloseSockets: long-lived streams end
	stopOnce sync.Once

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error
	readyTTL time.Duration
}

// New returns the API over sandboxes.
func New(sandboxes Sandboxes, waker Waker, audit Auditor, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{sandboxes: sandboxes, waker: waker, audit: audit, log: log, readyTTL: 2 * time.Second,
		stopping: make(chan struct{})}
}

// SetTokens replaces the API tokens (on SIGHUP).
func (s *Server) SetTokens(tokens map[string]string) {
	s.tokensMu.Lock()
	s.Tokens = tokens
	s.tokensMu.Unlock()
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handler returns the API's http.Handler.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	// Match on the raw path: "/sandbox/..%2F/purge" must reach the handler as the id
	// "..%2F" and be refused, never be decoded into a path that climbs out.
	r.UseEncodedPath()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &apiError{http.StatusNotFound, "not_found", "no such route: " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &apiError{http.StatusMethodNotAllowed, "method_not_allowed", r.Method + " is not allowed on " + r.URL.Path})
	})
	s.routes(r)
	return s.logRequests(s.authenticate(r))
}

// handler is a route that returns its error for one funnel to answer.
type handler func(w http.ResponseWriter, r *http.Request) error

func (s *Server) h(fn handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

type ctxKey int

const actorKey ctxKey = 0

// actor is the token name of the request, or "operator" when auth is off.
func actor(r *http.Request) string {
	if a, ok := r.Context().Value(actorKey).(string); ok {
		return a
	}
	return "operator"
}

// statusWriter records the status for the request log and keeps Flush and Hijack
// reachable through Unwrap (SSE, streaming exec, the terminal).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := strings.ToLower(ulid.Make().String())
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 && r.Header.Get("Upgrade") != "" {
			sw.status = http.StatusSwitchingProtocols // hijacked: nothing was written through sw
		}
		s.log.Info("request", "request_id", id, "method", r.Method, "path", r.URL.EscapedPath(),
			"status", sw.status, "duration_ms", time.Since(start).Milliseconds(), "actor", actor(r))
	})
}
