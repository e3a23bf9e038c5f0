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
	"github.com/sandboxd/sandboxd/admin/apikey"
	"github.com/sandboxd/sandboxd/internal/httplog"
)

// Waker brings a sandbox up; admin uses the edge's waker so starts share its admission.
type Waker interface {
	Wake(ctx context.Context, id string, port int) (netip.AddrPort, error)
}

// Server is the admin API. Construct with New; the exported fields are optional.
type Server struct {
	// PreviewURL formats the preview URL of a sandbox port; nil omits preview URLs.
	PreviewURL func(id string, port int) string
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Heartbeat is how often a quiet streaming exec sends a keep-alive so proxies do not
	// close it; zero means 15s.
	Heartbeat time.Duration

	// Issue 17: the OpenAPI document and the MCP server.
	// Version is this sandboxd's version, shown as info.version of /v1/openapi.json; ""
	// leaves the document's own ("dev").
	Version string
	// MCP serves /mcp behind the API's auth; nil answers 404. Its tools call this API's
	// Handler with the caller's token, so they can do what the token can and no more.
	MCP http.Handler

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
	keys       *apikey.Keys
	tokens     TokenStore
	auditLog   AuditLog
	previews   Previews  // issue 13
	snapshots  Snapshots // issue 18
	log        *slog.Logger

	// Issue 15.
	networks Networks
	egress   EgressStatus

	// LoopbackOnly, set when the API has no tokens and listens on loopback, refuses
	// requests whose Host is not a loopback name: a DNS-rebinding page cannot borrow the
	// browser of someone on the host.
	LoopbackOnly bool

	sockets  sockets
	stopping chan struct{} // closed by CloseSockets: long-lived streams end
	stopOnce sync.Once

	docOnce sync.Once // the document with Version, made at its first request
	doc     []byte

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
	Audit      Auditor       // audit.go: nil records nothing

	// Issue 13: who may call. Keys nil serves everyone as the operator (tests);
	// TokenStore and AuditLog nil answer their routes as unavailable.
	Keys     *apikey.Keys // auth.go: environment and stored tokens
	Tokens   TokenStore   // tokens.go: POST/GET/DELETE /v1/tokens
	AuditLog AuditLog     // audit.go: GET /v1/audit
	Previews Previews     // previews.go: preview access and tokens (issue 13)

	// Issue 15: network.go.
	Networks Networks     // PUT .../network
	Egress   EgressStatus // recent denials; nil shows none

	Snapshots Snapshots // snapshots.go: snapshots, restore, fork, revert, templates (issue 18)
}

// New returns the API over d; a nil log discards.
func New(d Deps, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{
		sandboxes: d.Sandboxes, execs: d.Execs, detached: d.Detached, terminals: d.Terminals,
		workspaces: d.Workspaces, services: d.Services, taskRunner: d.Tasks, health: d.Health, waker: d.Waker, audit: d.Audit,
		keys: d.Keys, tokens: d.Tokens, auditLog: d.AuditLog, previews: d.Previews,
		log: log, readyTTL: 2 * time.Second, stopping: make(chan struct{}),
		networks: d.Networks, egress: d.Egress,
		snapshots: d.Snapshots,
	}
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Handler returns the API's http.Handler.
func (s *Server) Handler() http.Handler {
	return s.logRequests(s.authenticate(s.router()))
}

// router is every route with the middlewares that need to know the route. Tests walk it
// to reach every route, those added later included.
func (s *Server) router() *mux.Router {
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
	// After routing, so both know the route: the audit outside, to record what the tenant
	// scope refuses too.
	r.Use(s.audited, s.scoped)
	return r
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

// logRequests is outermost: it names the request, and the request info it puts in the
// context is where authentication leaves the actor for the log line (issue 13: the line
// said "operator" whoever called, for it read a context the inner handlers had replaced).
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := strings.ToLower(ulid.Make().String())
		w.Header().Set("X-Request-Id", id)
		sw := httplog.NewStatusWriter(w)
		info := &requestInfo{id: id, w: sw}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), infoKey, info)))
		s.log.Info("request", "request_id", id, "method", r.Method, "path", r.URL.EscapedPath(),
			"status", sw.Status(r), "duration_ms", time.Since(start).Milliseconds(), "actor", info.actor(), "tenant", info.tenant())
	})
}
