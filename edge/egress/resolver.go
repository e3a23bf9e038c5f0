package egress

import (
	"context"
	"net"
	"time"
)

// DNSResolver returns a Resolver that sends its queries to the DNS server at addr
// (host:port) only, over UDP and, for long answers, TCP. The hosts file is read first, as
// Go's resolver always does; names it maps to this host are refused like any other.
func DNSResolver(addr string) Resolver {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
}
