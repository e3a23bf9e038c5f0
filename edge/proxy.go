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
	body       *rateBody      // the request's body, when it has one under the rate rule
}

type hopKey struct{}

func hopFrom(ctx context.Context) *hop {
	h, _ := ctx.Value(hopKey{}).(*hop)
	return h
}

// bodyOf returns r's body under the rate rule, if it has one: r is the request the edge
// got, or ReverseProxy's copy of it, whose body ReverseProxy wraps.
func bodyOf(r *http.Request) *rateBody {
	if rb, ok := r.Body.(*rateBody); ok {
		return rb
	}
	if h := hopFrom(r.Context()); h != nil {
		return h.body
	}
	return nil
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
		// Node's servers (Vite, Next, webpack's) close a connection idle for
		// 5s. One closing just as a request is sent on it fails that request,
		// and the Transport retries only a request it can replay: a POST would
		// get a 502. Closing ours first, after 4s, leaves no such race; a new
		// connection to a container on this host costs well under a
		// millisecond.
		IdleConnTimeout: 4 * time.Second,
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
	if rb := bodyOf(r); rb != nil && rb.wasCut() {
		// The read that hit the deadline also canceled the request's context: answer
		// anyway, or http.Server would send an empty 200 for the handler. An HTTP/1
		// connection cannot go on (the rest of the body is still on it); on HTTP/2 the
		// stream is reset and the connection's other streams go on.
		if r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close")
		}
		s.write(w, r, answer{status: http.StatusRequestTimeout, code: "body_too_slow",
			message: "the request body arrived slower than " + itoa(s.bodyMinRate()) + " bytes per second; the request was cut"})
		return
	}
	if r.Context().Err() != nil {
		return // the client left: no answer, no log
	}
	h := hopFrom(r.Context())
	if errors.Is(err, errBackendsFull) {
		s.limited("backends")
		s.answer(w, r, answer{status: http.StatusServiceUnavailable, code: "edge_busy",
			message: "the preview edge is at its connection limit; try again shortly", retryAfter: 5 * time.Second})
		return
	}
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
// reuse this connection counts into the same counter. A connection takes one
// of MaxConns backend places until it closes.
func (s *Server) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	h := hopFrom(ctx)
	if h == nil {
		return nil, &dialError{errors.New("edge: dial without a route")}
	}
	slots, ok := s.takeBackend()
	if !ok {
		return nil, errBackendsFull
	}
	d := Dialer{Timeout: s.DialTimeout, RelayPort: s.RelayPort} // Dialer applies the 5s default
	c, err := d.DialContext(ctx, network, h.addr.String())
	if err != nil {
		if slots != nil {
			slots.Add(-1)
		}
		return nil, &dialError{err}
	}
	if h.bytes == nil && slots == nil {
		return c, nil
	}
	return &backendConn{Conn: c, n: h.bytes, slots: slots}, nil
}

// errBackendsFull: every backend place is taken by a request in flight.
var errBackendsFull = errors.New("edge: every backend connection is in use")

// takeBackend takes a backend place and returns the counter to give it back to, nil when
// backends are not capped. When they are all taken, idle pooled connections are closed to
// make room: with HTTP/1.1 every request in flight holds a client connection, so then
// there is room; only HTTP/2 streams can hold more, and they are refused.
func (s *Server) takeBackend() (*atomic.Int64, bool) {
	s.limit()
	if s.maxBackends <= 0 {
		return nil, true
	}
	for i := range 2 {
		if s.backends.Add(1) <= s.maxBackends {
			return &s.backends, true
		}
		s.backends.Add(-1)
		if i == 0 {
			s.transport.CloseIdleConnections()
		}
	}
	return nil, false
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
