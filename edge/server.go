// Package edge is the preview HTTP edge. It owns the way from a preview
// host, s-<id>-<port>.preview.<domain>, to a sandbox's port: Host parsing,
// the in-memory route table, holding a request while wake brings a sleeping
// sandbox up, the reverse proxy with its one shared Transport (HTTP,
// WebSocket, SSE), activity counting on backend connections, tracking of
// upgraded connections, the access check of private previews (access.go),
// the error pages, and the starting page a navigation gets while the app
// boots (starting.go, startpage.go). A request to a running sandbox whose port is known
// open touches memory only, private or public. It also bounds what a client can hold:
// connections in all and per client, HTTP/2 streams per client, backend connections, and
// the pace of request bodies (connlimit.go, bodyrate.go).
package edge

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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

	// MaxConns caps the client connections of every listener wrapped by Listener or
	// TLSListener, together, and the backend connections as well, so that the edge holds
	// at most 2×MaxConns descriptors beyond its listeners. Zero means MaxConnsFor the
	// process's open-file limit, read at first use; negative means no cap.
	MaxConns int

	// MaxConnsPerIP caps the connections of one client (an IPv4 address or an IPv6 /64);
	// an HTTP/2 client's streams in flight count as connections too. Zero means 256;
	// negative means no cap (behind a proxy that is every client's address, say).
	MaxConnsPerIP int

	// BodyMinRate and BodyWindow are the minimum pace of a request body: BodyMinRate
	// bytes per second, measured over BodyWindow (see bodyrate.go). A body that falls
	// behind is cut: the connection closes with a 408 and the backend request is
	// aborted. Zero means 1 KiB/s and 10s; a negative BodyMinRate turns the rule off.
	BodyMinRate int
	BodyWindow  time.Duration

	// OnLimit, when set, is called each time a limit refuses or cuts something, with
	// the limit's name: "conns_per_ip", "conns", "streams_per_ip", "backends" or
	// "body_rate". It must be cheap and safe for concurrent use.
	OnLimit func(limit string)

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
	// still starting, from the request's arrival; it is how long the image's command
	// that shows running gets a navigation the starting page, and how long the starting
	// page keeps reloading. cmd/sandboxd sets SANDBOXD_WAKE_TIMEOUT, as the waker's
	// Timeout. Zero means 60s.
	WakeTimeout time.Duration

	domain    string
	table     *Table
	waker     Waker
	log       *slog.Logger
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	upgrades  upgrades

	limitsOnce  sync.Once
	limits      *connLimits // client connections and streams
	maxBackends int64       // <= 0: no cap
	backends    atomic.Int64

	services serviceCache // issue 14: what the starting page shows of a port's service
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
	if r.ProtoMajor == 2 {
		// Streams of one connection share its place; each holds a backend connection
		// of its own, so a client's streams count toward its share.
		a := clientOfRequest(r.RemoteAddr)
		switch s.limit().acquire(a, false) {
		case tooMany:
			s.limited("streams_per_ip")
			s.answer(w, r, answer{status: http.StatusTooManyRequests, code: "too_many_connections",
				message: "this address has too many requests in flight to the preview edge; try again shortly", retryAfter: time.Second})
			return
		case admitted:
			defer s.limits.release(a, false)
		}
	}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody && s.bodyMinRate() > 0 {
		rb := newRateBody(r.Body, http.NewResponseController(w), s.bodyMinRate(), s.bodyWindow(),
			func() { s.limited("body_rate") })
		r.Body = rb
		defer rb.finish()
	}
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
	case e.route.State.Sleeping() && !e.route.WakeOn.Wakes(requestKind(r)):
		// A page's background request (a live-reload reconnect, say) does not
		// wake a sleeping sandbox: memory only, answered at once (issue 14).
		s.answer(w, r, sleeping(id))
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
	e, ok := s.stillAdmitted(w, r, id, port) // deleted, revoked or made private meanwhile
	if !ok {
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
	h.body, _ = r.Body.(*rateBody)
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

// Listener wraps ln, a plain HTTP listener of the edge, so that its connections count
// toward MaxConns and MaxConnsPerIP with those of every listener s wrapped; one over a cap
// is answered 429 (this client holds its share) or 503 (the edge is full), with
// Retry-After, and closed. Call it after setting the knobs.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, limits: s.limit(), plain: true, limited: s.limited}
}

// TLSListener is Listener for a listener whose server speaks TLS (ServeTLS): a connection
// over a cap is closed without an answer.
func (s *Server) TLSListener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, limits: s.limit(), limited: s.limited}
}

// OpenConns returns the client connections counted by the caps now, and how many
// clients hold them.
func (s *Server) OpenConns() (conns, clients int) { return s.limit().open() }

// limit returns the caps, made from the knobs at first use.
func (s *Server) limit() *connLimits {
	s.limitsOnce.Do(func() {
		max := s.MaxConns
		if max == 0 {
			max = MaxConnsFor(openFileLimit())
		}
		perIP := s.MaxConnsPerIP
		if perIP == 0 {
			perIP = defaultMaxConnsPerIP
		}
		s.limits = newConnLimits(max, perIP)
		s.maxBackends = int64(max)
	})
	return s.limits
}

func (s *Server) limited(limit string) {
	if s.OnLimit != nil {
		s.OnLimit(limit)
	}
}

func (s *Server) bodyMinRate() int {
	if s.BodyMinRate == 0 {
		return defaultBodyMinRate
	}
	return s.BodyMinRate
}

func (s *Server) bodyWindow() time.Duration { return orDefault(s.BodyWindow, defaultBodyWindow) }

func (s *Server) readHeaderTimeout() time.Duration {
	if s.ReadHeaderTimeout <= 0 {
		return 10 * time.Second
	}
	return s.ReadHeaderTimeout
}
