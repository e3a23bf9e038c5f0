// Package edge is the preview HTTP edge. It owns the way from a preview
// host, s-<id>-<port>.preview.<domain>, to a sandbox's port: Host parsing,
// the in-memory route table, holding a request while wake brings a sleeping
// sandbox up, the reverse proxy with its one shared Transport (HTTP,
// WebSocket, SSE), activity counting on backend connections, tracking of
// upgraded connections, the access check of private previews (access.go),
// and the error pages. A request to a running sandbox whose port is known
// open touches memory only, private or public.
package edge

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Waker brings a sandbox up and returns the address of its port once the
// port accepts connections. *wake.Waker implements it; its errors
// (*wake.CapacityError, wake.ErrTimeout, *wake.PortClosedError) choose the
// error answer.
type Waker interface {
	Wake(ctx context.Context, id string, port int) (netip.AddrPort, error)
}

// EnvdPort is the port of E2B's envd, which Server.Envd serves.
const EnvdPort = 49983

// Server is the edge's http.Handler. Create it with NewServer; set the
// knobs before serving.
type Server struct {
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers, for servers made by HTTPServer. Zero means 10s.
	ReadHeaderTimeout time.Duration

	// DialTimeout bounds each new connection to a sandbox. Zero means 5s.
	DialTimeout time.Duration

	// OnStatus, when set, is called with the status of every answer: the app's through the
	// proxy, and the edge's own errors. It must be cheap and safe for concurrent use.
	OnStatus func(code int)

	// RelayPort is sandbox-init's loopback relay (see Dialer); 0 means no relay, so a
	// server bound only to the sandbox's loopback is unreachable.
	RelayPort int

	// Envd, when set, serves port EnvdPort of every sandbox in place of the sandbox
	// itself: sandboxd's E2B envd (admin/e2b/envd), which E2B's SDKs reach at
	// 49983-<id>.preview.<domain>. The edge sets the request's E2b-Sandbox-Id header to
	// the host's id, overwriting any the client sent. Nil means port 49983 is a port like
	// any other.
	Envd http.Handler

	// Now is the clock preview tokens expire by; nil means time.Now.
	Now func() time.Time

	// Issue 14: the starting page (starting.go).

	// Services, when set, describes the service behind a port that does not answer, for
	// the starting page and the 502 "port closed". Nil means neither names a service:
	// navigations are held like any request.
	Services Services
	// StartingAfter is how long a navigation is held before it gets the starting page:
	// an app that answers within it (a paused sandbox's, say) shows without the page
	// flashing by. Zero means 1s.
	StartingAfter time.Duration
	// WakeTimeout bounds the hold of a request to a running sandbox whose service is
	// still starting, from the request's arrival, and is how long a service counts as
	// starting after its process started. cmd/sandboxd sets SANDBOXD_WAKE_TIMEOUT, as the
	// waker's Timeout. Zero means 60s.
	WakeTimeout time.Duration

	domain    string
	table     *Table
	waker     Waker
	log       *slog.Logger
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	upgrades  upgrades
	services  serviceCache
}

// NewServer returns a Server for preview hosts under domain, routing with
// table and waking sandboxes with waker. A nil log discards.
func NewServer(domain string, table *Table, waker Waker, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		domain: strings.ToLower(strings.TrimSuffix(domain, ".")),
		table:  table,
		waker:  waker,
		log:    log,
	}
	s.upgrades.conns = make(map[*upgradedConn]struct{})
	table.onRevoke(s.revoked)
	s.transport = s.newTransport()
	s.proxy = s.newProxy()
	return s
}

// ServeHTTP routes one preview request: Host → route → proxy, waking the
// sandbox first unless it runs and the port is known open.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, port, ok := ParseHost(r.Host, s.domain)
	if !ok {
		s.answer(w, r, unknownHost(r.Host, s.domain))
		return
	}
	if port == EnvdPort && s.Envd != nil {
		r.Header.Set("E2b-Sandbox-Id", id)
		s.Envd.ServeHTTP(w, r)
		return
	}
	e := s.table.lookup(id)
	if e == nil {
		s.answer(w, r, notFound(id))
		return
	}
	i := e.portIndex(port)
	if e.private(i, port) && !s.admit(w, r, e, port) {
		return // answered: 401, or the 303 that trades a link's token for a cookie
	}
	switch {
	case i < 0:
		s.answer(w, r, answer{status: http.StatusNotFound, code: "port_not_declared",
			message: "port " + itoa(port) + " is not declared for sandbox " + id})
	case e.route.State == Broken:
		s.answer(w, r, broken(id, e.route.Message))
	case e.route.State == Running && e.open[i].Load():
		// The hot path: memory only, no probe, no wake.
		h := &hop{id: id, port: port, entry: e, index: i, fast: true,
			target: e.targets[i], addr: netip.AddrPortFrom(e.route.Addr, uint16(port)),
			bytes: e.route.Bytes, hostHeader: e.route.HostHeader}
		if s.forward(w, r, h) {
			s.wakeAndForward(w, r, id, port, false)
		}
	default:
		s.wakeAndForward(w, r, id, port, e.route.State != Running)
	}
}

// wakeAndForward holds the request until the sandbox's port accepts
// connections, then proxies it; a navigation gets the starting page instead
// when the port does not answer soon (wakeFor). The request body is not
// touched meanwhile. woke reports that the sandbox was not running when the
// request came.
func (s *Server) wakeAndForward(w http.ResponseWriter, r *http.Request, id string, port int, woke bool) {
	addr, ok := s.wakeFor(w, r, id, port, woke)
	if !ok {
		return // answered
	}
	e := s.table.lookup(id)
	if e == nil { // deleted while the request waited
		s.answer(w, r, notFound(id))
		return
	}
	if e.private(e.portIndex(port), port) && !s.verified(r, e, port) {
		s.answer(w, r, unauthorized()) // revoked, or made private, while the request waited
		return
	}
	h := &hop{id: id, port: port, addr: addr, bytes: e.route.Bytes, hostHeader: e.route.HostHeader}
	if i := e.portIndex(port); i >= 0 && e.route.State == Running && addr == netip.AddrPortFrom(e.route.Addr, uint16(port)) {
		e.open[i].Store(true)
		h.entry, h.index, h.target = e, i, e.targets[i]
	} else {
		// The table does not (yet) say the sandbox runs at addr: use a
		// one-off connection rather than a pool keyed by a stale route.
		h.target = &url.URL{Scheme: "http", Host: addr.String()}
	}
	s.forward(w, r, h)
}

// forward proxies r along h. It reports whether the request should be
// retried through wake: a fast-path request without a body whose dial
// failed (the app or its container went away behind the table's back).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, h *hop) (retry bool) {
	if up := r.Header.Get("Upgrade"); up != "" {
		w = &upgradeWriter{ResponseWriter: w, upgrades: &s.upgrades, websocket: strings.EqualFold(up, "websocket"), id: h.id, port: h.port}
	}
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), hopKey{}, h)))
	return h.retry
}

// HTTPServer returns an *http.Server serving s on addr with the edge's
// limits: ReadHeaderTimeout, 64 KiB of headers, 120s idle keep-alive. It
// sets no ReadTimeout or WriteTimeout, which would cut WebSockets, SSE and
// long polls. Its Shutdown also closes upgraded connections (which
// http.Server does not track) and refuses new upgrades from then on, for
// every server of s: call it when the process stops serving.
func (s *Server) HTTPServer(addr string) *http.Server {
	srv := &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: s.readHeaderTimeout(),
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       120 * time.Second,
		// Handshake failures and header-timeout cuts are the Internet's
		// noise, not the operator's business.
		ErrorLog: slogDebugLogger(s.log),
	}
	srv.RegisterOnShutdown(s.upgrades.closeAll)
	return srv
}

// CloseWebSockets ends every upgraded connection and refuses new upgrades,
// as the Shutdown of a server made by HTTPServer does, but returns only once
// they are closed: Shutdown starts this without waiting for it. A WebSocket
// client gets a Close frame with status 1001 (Going Away) first, unless the
// app's frame being relayed to it is only partly sent; then the connection
// just closes. Call it when the process stops serving, before it exits.
func (s *Server) CloseWebSockets() { s.upgrades.closeAll() }

// OpenWebSockets returns the number of upgraded (WebSocket) connections
// being proxied now.
func (s *Server) OpenWebSockets() int { return s.upgrades.len() }

func (s *Server) readHeaderTimeout() time.Duration {
	if s.ReadHeaderTimeout <= 0 {
		return 10 * time.Second
	}
	return s.ReadHeaderTimeout
}
