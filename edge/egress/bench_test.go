package egress

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// BenchmarkEgress downloads 64 KiB once, and makes 100 small requests, per op, from the
// same loopback servers: straight, and through the egress proxy (plain HTTP forwarded;
// https:// through a CONNECT tunnel), over keep-alive connections as npm and pip use them.
// The ratio proxy/direct of each pair is what the proxy costs.
func BenchmarkEgress(b *testing.B) {
	h := newHarness(b, nil)
	proxied := h.sandbox("127.0.0.2", "bench", netpolicy.Proxy, "allowed.example")
	direct := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: h.tls.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "example.com"},
	}}
	urls := map[string]map[string]string{
		"http":  {"direct": h.plain.URL, "proxy": "http://allowed.example"},
		"https": {"direct": h.tls.URL, "proxy": "https://allowed.example"},
	}
	for _, work := range []struct {
		name  string
		path  string
		times int
	}{{"64KiB", "/bytes", 1}, {"100small", "/", 100}} {
		for _, scheme := range []string{"http", "https"} {
			for _, via := range []string{"direct", "proxy"} {
				c := direct
				if via == "proxy" {
					c = proxied.c
				}
				url := urls[scheme][via] + work.path
				b.Run(work.name+"/"+scheme+"/"+via, func(b *testing.B) {
					get := func() {
						res, err := c.Get(url)
						if err != nil {
							b.Fatal(err)
						}
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode != 200 {
							b.Fatalf("status %d", res.StatusCode)
						}
					}
					get() // warm: a connection in the pool
					b.ReportAllocs()
					for b.Loop() {
						for range work.times {
							get()
						}
					}
				})
			}
		}
	}
}
