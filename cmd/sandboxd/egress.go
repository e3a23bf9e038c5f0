package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/edge/egress"
	"github.com/sandboxd/sandboxd/internal/netpolicy"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// Issue 15: the egress policy's settings, and the egress proxy's listener.

func egressSettings(c *config) []setting {
	return []setting{
		{"SANDBOXD_EGRESS", "egress", "open", "egress of a sandbox created without a network policy: none, proxy or open", func(v string) error {
			if !netpolicy.ValidMode(v) {
				return fmt.Errorf("want %s", netpolicy.ModeList())
			}
			c.Egress = v
			return nil
		}},
		{"SANDBOXD_EGRESS_ALLOW", "egress-allow", "", "comma-separated names (*.example.com) and CIDRs every sandbox's allowlist includes", func(v string) error {
			var list []string
			for _, e := range strings.Split(v, ",") {
				if e = strings.TrimSpace(e); e != "" {
					list = append(list, e)
				}
			}
			norm, err := netpolicy.Normalize("entry", list)
			if err != nil {
				return err
			}
			c.EgressAllow = norm
			return nil
		}},
		{"SANDBOXD_EGRESS_PROXY_PORT", "egress-proxy-port", "3128", "port of the egress proxy on the sandboxes' gateway (0: any free port, chosen at each start)", func(v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("want a port, 0-65535")
			}
			c.EgressPort = n
			return nil
		}},
		{"SANDBOXD_EGRESS_RESOLVER", "egress-resolver", "", "host:port of the DNS server the egress proxy asks (empty: this host's resolver)", func(v string) error {
			if v == "" {
				return nil
			}
			if _, err := netip.ParseAddrPort(v); err != nil {
				return fmt.Errorf("want an IP address and port, like 1.1.1.1:53")
			}
			c.EgressResolver = v
			return nil
		}},
	}
}

// newEgress is the egress proxy of cfg. listenEgress tells it the sandbox networks.
func newEgress(cfg *config, log *slog.Logger) *egress.Proxy {
	p := egress.New(cfg.EgressAllow, log.With("component", "egress"))
	if cfg.EgressResolver != "" {
		p.Resolver = egress.DNSResolver(cfg.EgressResolver)
	}
	return p
}

// listenEgress makes the sandbox networks, tells the proxy their ranges, and listens on
// the internal network's gateway, an address of this host that only sandboxes (and the
// host) reach. The manager learns the address for the containers' proxy variables.
func listenEgress(ctx context.Context, cfg *config, mgr *lifecycle.Manager, proxy *egress.Proxy) (net.Listener, error) {
	nets, err := mgr.Networks(ctx)
	if err != nil {
		return nil, err
	}
	proxy.Blocked = []netip.Prefix{nets.Bridge, nets.Internal}
	proxy.Internal = nets.Internal
	ln, err := net.Listen("tcp", netip.AddrPortFrom(nets.Gateway, uint16(cfg.EgressPort)).String())
	if err != nil {
		return nil, fmt.Errorf("SANDBOXD_EGRESS_PROXY_PORT: %w", err)
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	mgr.EgressProxy = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return ln, nil
}
