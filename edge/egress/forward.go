package egress

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// serveForward forwards a plain-HTTP request (HTTP_PROXY with an http:// URL), when the
// policy allows its URL's host. The Host header sent upstream is the URL's: a request may
// not name an allowed server in its URL and another site in its Host.
func (p *Proxy) serveForward(w http.ResponseWriter, r *http.Request, pol *policy) {
	switch {
	case r.URL.Scheme == "https":
		p.refuse(w, pol, r.URL.Host, &refusal{netpolicy.ReasonBad,
			"https:// goes through CONNECT: set HTTPS_PROXY to this proxy (sandboxd sets it in every sandbox), not HTTP_PROXY alone"})
		return
	case r.URL.Scheme != "http" || r.URL.Host == "":
		p.refuse(w, pol, r.Host, &refusal{netpolicy.ReasonBad,
			"this is sandboxd's egress proxy: send requests through it (HTTP_PROXY, HTTPS_PROXY), not to it"})
		return
	case r.Header.Get("Upgrade") != "":
		p.refuse(w, pol, r.URL.Host, &refusal{netpolicy.ReasonBad, "upgrades (WebSocket) go through CONNECT, not a forwarded request"})
		return
	}
	port := 80
	if ps := r.URL.Port(); ps != "" {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			p.refuse(w, pol, r.URL.Host, &refusal{netpolicy.ReasonBad, fmt.Sprintf("port %q is not 1-65535", ps)})
			return
		}
		port = n
	}
	addrs, _, ref, err := p.decide(r.Context(), pol, r.URL.Hostname())
	if ref != nil {
		p.refuse(w, pol, r.URL.Host, ref)
		return
	}
	p.stats.allow(pol.sandbox, p.now())
	if err != nil {
		plain(w, http.StatusBadGateway, err.Error())
		return
	}
	f := &forwarded{key: poolKey(pol.sandbox, addrs[0], port), host: r.URL.Host}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardKey{}, f)))
}

type forwardKey struct{}

// forwarded is where one request goes: key is its connection pool's, host the Host.
type forwarded struct {
	key  string
	host string
}

// poolKey names the upstream connection pool of (sandbox, address, port) as a URL host
// that the transport's dialer reads back. Connections are never shared between
// sandboxes, nor between addresses: a connection dialed under one policy must not carry a
// request another policy refuses.
func poolKey(sandbox string, addr netip.Addr, port int) string {
	return "a" + hex.EncodeToString(addr.AsSlice()) + "." + sandbox + ".egress:" + strconv.Itoa(port)
}

// poolAddr reads the address back from a pool key.
func poolAddr(key string) (string, error) {
	host, port, err := net.SplitHostPort(key)
	if err != nil {
		return "", err
	}
	label, _, _ := strings.Cut(host, ".")
	b, err := hex.DecodeString(strings.TrimPrefix(label, "a"))
	if err != nil {
		return "", err
	}
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return "", errors.New("bad pool key " + key)
	}
	return net.JoinHostPort(a.String(), port), nil
}

func (p *Proxy) newTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil, // never another proxy, whatever sandboxd's own environment says
		DialContext: func(ctx context.Context, _, key string) (net.Conn, error) {
			addr, err := poolAddr(key)
			if err != nil {
				return nil, err
			}
			return p.dial(ctx, addr)
		},
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        30 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true, // pass bodies through as they come
	}
}

func (p *Proxy) newForwarder() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			f := pr.In.Context().Value(forwardKey{}).(*forwarded)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = f.key
			pr.Out.Host = f.host
			// No X-Forwarded-*: the proxy does not announce the sandbox to the world.
		},
		Transport:  p.transport,
		BufferPool: bufferPool{},
		ErrorLog:   slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f := r.Context().Value(forwardKey{}).(*forwarded)
			if r.Context().Err() != nil {
				return // the sandbox left
			}
			plain(w, http.StatusBadGateway, fmt.Sprintf("cannot reach %s: %v", f.host, err))
		},
	}
}

// refuse answers a request the policy does not allow (403) or cannot be served (400),
// with a body that says why, and records the denial.
func (p *Proxy) refuse(w http.ResponseWriter, pol *policy, host string, ref *refusal) {
	p.stats.deny(pol.sandbox, host, ref.reason, p.now())
	status := http.StatusForbidden
	if ref.reason == netpolicy.ReasonBad {
		status = http.StatusBadRequest
	}
	plain(w, status, ref.msg)
}

// bufferPool lends the forwarder the tunnels' 16 KiB buffers, rather than a new 32 KiB one
// per response.
type bufferPool struct{}

func (bufferPool) Get() []byte  { return *bufPool.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { bufPool.Put(&b) }
