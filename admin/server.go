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
	"github.com/sandboxd/sandboxd/store"
)

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
	// Heartbeat is how often a quiet streaming exec sends a keep-alive so proxies do not
	// close it; zero means 15s.
	Heartbeat time.Duration

	sandboxes  Sandboxes
	execs      Execs
	detached   DetachedExecs
	terminals  Terminals
	workspaces Workspaces
	services   Services
	taskRunner Tasks
	health     Pinger
	waker      Waker
	audit      Auditor
	log        *slog.Logger

	// Issue 15.
	networks Networks
	egress   EgressStatus

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

// Deps are what the API serves. Each interface is declared beside the handlers that use
// it; one *lifecycle.Manager satisfies them all. sandboxd sets every one; a test sets those
// its routes reach (a route whose dependency is nil panics, and the test shows which).
type Deps struct {
	Sandboxes  Sandboxes     // sandboxes.go: create, read, stop, delete, keepalive
	Execs      Execs         // exec.go: commands, buffered or streamed
	Detached   DetachedExecs // execs.go: commands that outlive the request
	Terminals  Terminals     // terminal.go
	Workspaces Workspaces    // files.go
	Services   Services      // services.go
	Tasks      Tasks         // tasks.go: coding agents; nil answers the task routes as unavailable
	Health     Pinger        // health.go: readiness
	Waker      Waker         // wakes a stopped sandbox before exec, terminal, task, keepalive
	Audit      Auditor       // nil records nothing

	// Issue 15: network.go.
	Networks Networks     // PUT .../network
	Egress   EgressStatus // recent denials; nil shows none
}

// New returns the API over d; a nil log discards.
func New(d Deps, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{
		sandboxes: d.Sandboxes, execs: d.Execs, detached: d.Detached, terminals: d.Terminals,
		workspaces: d.Workspaces, services: d.Services, taskRunner: d.Tasks, health: d.Health, waker: d.Waker, audit: d.Audit,
		log: log, readyTTL: 2 * time.Second, stopping: make(chan struct{}),
		networks: d.Networks, egress: d.Egress,
	}
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
