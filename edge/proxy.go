package edge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// hop is one request's way to its backend. The handler puts it in the
// request's context; Rewrite, the dialer, ModifyResponse and the error
// handler read it from there.
type hop struct {
	id         string
	port       int
	addr       netip.AddrPort // where the dialer connects
	target     *url.URL       // the proxy URL; its host keys the connection pool
	entry      *entry         // the route entry whose pool is used; nil for a one-off connection
	index      int            // of port in entry's ports
	bytes      *atomic.Int64  // activity counter, may be nil
	hostHeader string         // Route.HostHeader
	fast       bool           // proxied without asking wake
	retry      bool           // set by the error handler: go through wake instead
}

type hopKey struct{}

func hopFrom(ctx context.Context) *hop {
	h, _ := ctx.Value(hopKey{}).(*hop)
	return h
}

// newTransport builds the one Transport every sandbox shares.
func (s *Server) newTransport() *http.Transport {
	var h1 http.Protocols
	h1.SetHTTP1(true) // apps speak HTTP/1.1; h2c upgrades pass as upgrades
	return &http.Transport{
		DialContext: s.dial,
		// Keep-alive to the sandboxes: a request on a pooled connection costs
		// no dial, no handshake with sandbox-init's relay and no TCP slow
		// start. "Host" is one port of one sandbox generation; a busy one
		// keeps a connection per request in flight, up to 256 (issue 14: 64
		// before), so that a burst past the pool's size does not end in
		// closing and redialing. The backend cap (MaxConns) bounds them all,
		// closing idle ones when it must.
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 256,
		// Dev servers close idle connections themselves (Node after 5s); the
		// Transport notices at once, as its idle connections are read from.
		IdleConnTimeout: 90 * time.Second,
		// ReadBufferSize and WriteBufferSize stay 4 KiB: the read buffer of a
		// WebSocket's backend connection lives as long as the WebSocket, and
		// a 64 KiB response is copied through a pooled buffer anyway.
		// Forward Expect: 100-continue, but do not let a silent app stall
		// the upload.
		ExpectContinueTimeout: time.Second,
		// The app's encoding reaches the client untouched.
		DisableCompression: true,
		Protocols:          &h1,
		// No ResponseHeaderTimeout: long polls wait as long as the app says.
	}
}

func (s *Server) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      s.transport,
		BufferPool:     &bufferPool{},
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   s.proxyError,
		// What ReverseProxy logs itself (a client gone mid-body, say) is
		// for debugging only.
		ErrorLog: slogDebugLogger(s.log),
	}
}

// rewrite points the outgoing request at its sandbox. The app sees the
// preview host (or localhost:<port>, if its route asks) and the usual
// X-Forwarded-* headers.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	h := hopFrom(pr.In.Context())
	pr.SetURL(h.target)
	pr.SetXForwarded()
	stripCredentials(pr.Out) // the app never sees a preview token (issue 13)
	switch h.hostHeader {
	case "":
		pr.Out.Host = pr.In.Host
	case "localhost":
		pr.Out.Host = "localhost:" + strconv.Itoa(h.port)
	default:
		pr.Out.Host = h.hostHeader
	}
	if h.entry == nil && pr.Out.Header.Get("Upgrade") == "" {
		// One-off connection: do not pool it. (An upgraded connection
		// leaves the pool anyway, and "Connection: close" would contradict
		// its "Connection: Upgrade".)
		pr.Out.Close = true
	}
}

// modifyResponse records that the port answered.
func (s *Server) modifyResponse(res *http.Response) error {
	if s.OnStatus != nil {
		s.OnStatus(res.StatusCode)
	}
	if h := hopFrom(res.Request.Context()); h != nil && h.entry != nil && !h.entry.open[h.index].Load() {
		h.entry.open[h.index].Store(true)
	}
	return nil
}

// proxyError is ReverseProxy's error funnel.
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client left: no answer, no log
	}
	h := hopFrom(r.Context())
	var de *dialError
	if errors.As(err, &de) {
		if h.entry != nil {
			h.entry.open[h.index].Store(false)
		}
		// Nothing was sent: a bodyless request that skipped wake can go
		// through it now (the container may have restarted elsewhere).
		if h.fast && (r.Body == nil || r.Body == http.NoBody) {
			h.retry = true
			return
		}
		s.answer(w, r, s.portClosed(h.id, h.port))
		return
	}
	s.log.Debug("proxy error", "id", h.id, "port", h.port, "err", err)
	s.answer(w, r, answer{status: http.StatusBadGateway, code: "bad_gateway",
		message: "the app on port " + itoa(h.port) + " did not answer properly"})
}

// dialError marks a failure to connect to the sandbox, as opposed to a
// failure on a connection that was open.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial connects to the hop's address (the Transport's addr is a pool key)
// and counts the connection's bytes into the sandbox's activity counter.
// A pool key names one generation of one route, so every request that may
// reuse this connection counts into the same counter.
func (s *Server) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	h := hopFrom(ctx)
	if h == nil {
		return nil, &dialError{errors.New("edge: dial without a route")}
	}
	d := Dialer{Timeout: s.DialTimeout, RelayPort: s.RelayPort} // Dialer applies the 5s default
	c, err := d.DialContext(ctx, network, h.addr.String())
	if err != nil {
		return nil, &dialError{err}
	}
	if h.bytes == nil {
		return c, nil
	}
	return &countingConn{Conn: c, n: h.bytes}, nil
}

// bufferPool lends ReverseProxy its response copy buffers, which it would
// otherwise allocate (32 KiB) for every response. 64 KiB buffers halve the
// reads and writes of a large response (BenchmarkProxy/body=65536: about
// 30 µs less at p50 than 32 KiB); a buffer is held only while a response
// body is being copied. The pool holds pointers to the arrays, so that
// neither Get nor Put allocates (issue 14: a []byte put in a sync.Pool is
// boxed, 24 bytes a response).
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 64 << 10

func (b *bufferPool) Get() []byte {
	if a, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return a[:]
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if len(buf) == copyBufferSize { // ReverseProxy gives back what Get lent, whole
		b.p.Put((*[copyBufferSize]byte)(buf))
	}
}
