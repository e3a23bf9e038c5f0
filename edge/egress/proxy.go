// Package egress is sandboxd's egress proxy (issue 15): an HTTP proxy on the sandbox
// network's gateway that speaks CONNECT and forwards plain HTTP, and lets each sandbox
// reach only what its network policy allows. It knows a sandbox by the source address of
// its connection, from a map in memory that every route change keeps current; it resolves
// names itself and checks every address it connects to, so a name that resolves to this
// host, a sandbox or the cloud metadata service gets nowhere. Every resource a sandbox can
// grow here is bounded: connections per sandbox and in all, header sizes and times, idle
// tunnels, the counters and recent denials it keeps. It never imports admin.
package egress

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// Resolver resolves names for the proxy. *net.Resolver implements it; DNSResolver makes
// one that asks a given server.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Proxy is the egress proxy. Create it with New, set the knobs, then Serve. Its methods
// are safe for concurrent use.
type Proxy struct {
	// Resolver resolves the names sandboxes ask for. Nil means net.DefaultResolver.
	Resolver Resolver
	// Dial connects to an address a policy allowed. Nil means a net.Dialer with
	// DialTimeout. Tests point it at local servers.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Blocked are ranges the proxy never connects to, whatever a listed CIDR says: the
	// sandbox networks (a sandbox must not reach another through the proxy, which sits
	// beside Docker's inter-container rules, not behind them).
	Blocked []netip.Prefix
	// Internal is the network whose addresses are sandboxes' (lifecycle's internal
	// network). Guard refuses a source in it unless it is a sandbox in mode open.
	Internal netip.Prefix
	// HostNetworks lists this host's own addresses, which the proxy never connects to (a
	// connection from the host itself passes checks a sandbox's would not), and the
	// ranges of the networks bridged on it (Docker's, libvirt's), whose containers and VMs
	// a sandbox reaches only where the operator's list has a CIDR covering them: the host
	// reaches them past Docker's isolation of one network from another. Nil reads the
	// host's interfaces, at most every 5s.
	HostNetworks func() (own []netip.Addr, bridged []netip.Prefix, err error)
	// API names the admin API route that changes a policy, in refusals. Zero means
	// "PUT /v1/sandboxes/{id}/network".
	API string

	// MaxConnsPerSandbox bounds one sandbox's connections to the proxy; zero means 128.
	MaxConnsPerSandbox int
	// MaxConns bounds all connections to the proxy; zero means 2048. Each costs two file
	// descriptors and, while it tunnels, 32 KiB of buffers.
	MaxConns int
	// IdleTimeout closes a tunnel through which no byte moved either way for this long,
	// and an idle keep-alive connection; zero means 5 minutes.
	IdleTimeout time.Duration
	// HeaderTimeout bounds how long a sandbox may take to send a request's headers; zero
	// means 10s.
	HeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers; zero means 32 KiB.
	MaxHeaderBytes int
	// DialTimeout bounds one connection attempt upstream; zero means 10s.
	DialTimeout time.Duration
	// ResolveTimeout bounds one name resolution; zero means 5s.
	ResolveTimeout time.Duration
	// RecentDenials is how many denials the proxy keeps per sandbox; zero means 8.
	RecentDenials int
	// MaxTracked bounds the sandboxes the proxy keeps counters and denials for, so
	// /metrics stays a bounded set of series; beyond it the least recently active one is
	// folded into "_other". Zero means 1024.
	MaxTracked int
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	log           *slog.Logger
	operator      []string
	operatorOnce  sync.Once
	operatorAllow *netpolicy.Allowlist

	mu   sync.RWMutex
	byIP map[netip.Addr]*policy
	byID map[string]netip.Addr

	conns   connCounter
	tunnels tunnelSet
	stats   statsTable
	host    hostNets

	once      sync.Once
	srv       *http.Server
	rp        *httputil.ReverseProxy
	transport *http.Transport
}

// policy is one sandbox's policy, compiled. It is replaced, never changed.
type policy struct {
	sandbox  string
	mode     string
	allow    *netpolicy.Allowlist // the sandbox's own entries, then the operator's
	operator *netpolicy.Allowlist // the operator's alone
}

// New returns a Proxy that adds operator, the operator's allowlist (normalized by
// netpolicy.Normalize), to every sandbox's. A nil log discards.
func New(operator []string, log *slog.Logger) *Proxy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{
		log: log, operator: operator,
		byIP: map[netip.Addr]*policy{}, byID: map[string]netip.Addr{},
	}
	p.conns.per = map[netip.Addr]int{}
	p.tunnels.by = map[netip.Addr]map[*tunnel]struct{}{}
	return p
}

// init builds the server and transport from the knobs, once, at the first Serve.
func (p *Proxy) init() {
	p.once.Do(func() {
		p.stats.init(p.recentDenials(), p.maxTracked())
		p.transport = p.newTransport()
		p.rp = p.newForwarder()
		p.srv = &http.Server{
			Handler:           p,
			ReadHeaderTimeout: orDuration(p.HeaderTimeout, 10*time.Second),
			IdleTimeout:       p.idleTimeout(),
			MaxHeaderBytes:    orInt(p.MaxHeaderBytes, 32<<10),
			ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		}
	})
}

// Serve accepts sandboxes' connections on ln until Shutdown. It returns nil after
// Shutdown, or the listener's error.
func (p *Proxy) Serve(ln net.Listener) error {
	p.init()
	err := p.srv.Serve(&admitListener{Listener: ln, p: p})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for requests in flight until ctx ends, and closes
// every tunnel.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.init()
	p.tunnels.closeAll()
	err := p.srv.Shutdown(ctx)
	p.tunnels.wait()
	p.transport.CloseIdleConnections()
	return err
}

func (p *Proxy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Proxy) idleTimeout() time.Duration    { return orDuration(p.IdleTimeout, 5*time.Minute) }
func (p *Proxy) maxConnsPerSandbox() int       { return orInt(p.MaxConnsPerSandbox, 128) }
func (p *Proxy) maxConns() int                 { return orInt(p.MaxConns, 2048) }
func (p *Proxy) recentDenials() int            { return orInt(p.RecentDenials, 8) }
func (p *Proxy) maxTracked() int               { return orInt(p.MaxTracked, 1024) }
func (p *Proxy) dialTimeout() time.Duration    { return orDuration(p.DialTimeout, 10*time.Second) }
func (p *Proxy) resolveTimeout() time.Duration { return orDuration(p.ResolveTimeout, 5*time.Second) }

func (p *Proxy) api(id string) string {
	if p.API != "" {
		return p.API
	}
	return "PUT /v1/sandboxes/" + id + "/network"
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// ServeHTTP answers one request of a sandbox: CONNECT opens a tunnel, an absolute http://
// URL is forwarded; both only where the sandbox's policy allows.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	src := remoteAddr(r.RemoteAddr)
	pol := p.lookup(src)
	if pol == nil {
		p.stats.total(false, netpolicy.ReasonUnknown)
		plain(w, http.StatusForbidden, "this is sandboxd's egress proxy, for its running sandboxes only")
		return
	}
	if r.Method == http.MethodConnect {
		p.serveConnect(w, r, src, pol)
		return
	}
	p.serveForward(w, r, pol)
}

// plain answers with a short text body: what a refused tool prints.
func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

func remoteAddr(s string) netip.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
