// Package e2b makes sandboxd speak E2B's protocol, so E2B's stock SDKs work against it
// once E2B_API_URL, E2B_SANDBOX_URL and E2B_DOMAIN point here. It owns sandboxd's E2B
// listener (SANDBOXD_E2B_BIND): the control plane, shaped like E2B's OpenAPI document
// (POST /sandboxes, GET /v2/sandboxes, ...), and envd (package envd) for the requests that
// carry the E2b-Sandbox-Id header. The same envd answers through the edge at
// 49983-<id>.preview.<domain>.
//
// How E2B's sandbox maps onto sandboxd's:
//   - templateID is an image: "base" is the operator's default image, anything else an
//     image reference present on the host. metadata is labels (keys that are not label
//     keys are escaped, see labels.go); envVars is the sandbox env.
//   - Sandboxes made here get ids of lowercase letters and digits only (E2B's hosts split
//     on "-"), and declare the ports of Server.Ports, so get_host(port) reaches a server
//     on any of them.
//   - timeout has E2B's meaning: when it passes, the sandbox is killed, or paused when
//     autoPause was set. Until then sandboxd's idle sleep leaves it alone (the timeout is
//     its keepalive); E2B's timeout, not idle, decides when it ends. See deadline.go.
//   - state is "running" or "paused": every sandboxd state but running and creating reads
//     as paused. A paused sandbox resumes with connect, and also (as E2B's auto_resume)
//     when envd traffic reaches it.
//   - kill removes the sandbox and its workspace (purge): E2B's kill leaves nothing.
//
// Auth: X-API-Key carries one of sandboxd's API tokens (Authenticator). E2B's SDKs check
// the key's form before sending it, "e2b_" and hex, so a token meant for them has such a
// secret (NewAPIKey makes one). envd takes the per-sandbox access token that create and
// connect answer (envd.AccessToken).
package e2b

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/sandboxd/sandboxd/admin/e2b/envd"
	"github.com/sandboxd/sandboxd/internal/httplog"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// Sandboxes is what the control plane and envd need from the lifecycle manager.
type Sandboxes interface {
	envd.Sandboxes
	Create(ctx context.Context, req lifecycle.CreateRequest) (store.Sandbox, error)
	Get(ctx context.Context, id string) (store.Sandbox, error)
	List(ctx context.Context, o store.ListOptions) ([]store.Sandbox, error)
	Purge(ctx context.Context, id string) error
	Keepalive(ctx context.Context, id string, until time.Time) (store.Sandbox, error)
	Stats(ctx context.Context, id string) (lifecycle.Stats, error)
}

// Pauser pauses and resumes sandboxes. Pause of a sandbox that is not running and Resume
// of one that runs are no-ops; resumed says whether Resume started it.
//
// Until sandboxd has a real pause (issue 14), cmd/sandboxd wires Stop and Start here: a
// paused sandbox is stopped, its processes end and its files stay.
type Pauser interface {
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) (resumed bool, err error)
}

// Principal is who a request acts for.
type Principal struct {
	Actor  string // the token's name, for the audit log
	Tenant string // "" for an operator's token, which sees every sandbox
}

// Authenticator checks an API key (a token's secret): ErrUnknownKey when it is none, another
// error when it could not tell.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (Principal, error)
}

// ErrUnknownKey is an API key that belongs to no token.
var ErrUnknownKey = errors.New("unknown API key")

// Auditor records who changed what.
type Auditor interface {
	AppendAudit(ctx context.Context, a store.Audit) error
}

// Waker brings a sandbox up.
type Waker = envd.Waker

// Server is the E2B listener's handler. Create it with New; set the knobs before serving
// and run Run for its timeouts.
type Server struct {
	// Domain is what create answers as "domain": the SDKs reach envd at
	// 49983-<id>.<Domain> and a port at <port>-<id>.<Domain>. cmd/sandboxd sets
	// "preview.<PREVIEW_DOMAIN>".
	Domain string
	// Ports are declared on every sandbox made here: sandboxd's edge serves declared ports
	// only. Nil means DefaultPorts.
	Ports []int
	// MaxTimeout caps a sandbox's timeout. Zero means 24h, E2B's own longest.
	MaxTimeout time.Duration
	// Audit, when set, records every change made through this API.
	Audit Auditor
	// LoopbackOnly, set when sandboxd has no tokens and this listener is on loopback,
	// refuses a Host that is not a loopback name, as the admin API's LoopbackOnly does:
	// without tokens any key acts as the operator, so a DNS-rebound name must not reach it.
	LoopbackOnly bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	sandboxes Sandboxes
	pauser    Pauser
	auth      Authenticator
	envd      *envd.Handler
	key       []byte
	log       *slog.Logger
	deadlines deadlines
}

// DefaultPorts are the ports declared on a sandbox made through E2B's API: the usual ones
// of dev servers and of E2B's own examples.
var DefaultPorts = []int{3000, 3001, 4000, 4173, 5000, 5173, 8000, 8080, 8081, 8888, 9000}

// New returns the E2B listener's handler. key signs envd access tokens (LoadKey).
func New(sandboxes Sandboxes, waker Waker, pauser Pauser, auth Authenticator, key []byte, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{sandboxes: sandboxes, pauser: pauser, auth: auth, key: key, log: log}
	s.deadlines.init()
	s.envd = envd.New(key, sandboxes, waker, log)
	s.envd.OnWake = s.woke
	return s
}

// Envd is envd's handler, for the edge's port 49983: it reads the sandbox id from the
// E2b-Sandbox-Id header, which the edge sets from the host.
func (s *Server) Envd() *envd.Handler { return s.envd }

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) ports() []int {
	if s.Ports == nil {
		return DefaultPorts
	}
	return s.Ports
}

// Handler serves the E2B listener: envd for requests naming a sandbox in E2b-Sandbox-Id,
// the control plane for the rest.
func (s *Server) Handler() http.Handler {
	api := s.routes()
	return s.logRequests(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(envd.HeaderSandboxID) != "" {
			s.envd.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodOptions && envd.IsEnvdPath(r.URL.Path) && envd.Preflight(w, r) {
			return // a browser's preflight for envd, which carries no E2b-Sandbox-Id
		}
		api.ServeHTTP(w, r)
	}))
}

// Run ends sandboxes whose timeout passed until ctx ends, then ends envd's processes.
func (s *Server) Run(ctx context.Context) error {
	defer s.envd.Close()
	return s.runDeadlines(ctx)
}

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := httplog.NewStatusWriter(w) // Flush for envd's connect streams
		next.ServeHTTP(sw, r)
		attrs := []any{"method", r.Method, "path", r.URL.EscapedPath(), "status", sw.Status(r),
			"duration_ms", time.Since(start).Milliseconds()}
		if id := r.Header.Get(envd.HeaderSandboxID); id != "" {
			attrs = append(attrs, "sandbox", id)
		}
		s.log.Info("e2b request", attrs...)
	})
}

// running reports whether sb's container runs.
func (s *Server) running(id string) bool {
	_, ok := s.sandboxes.Running(id)
	return ok
}
