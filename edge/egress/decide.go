package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// refusal is a request the policy does not allow: a 403 whose body says why, and how to
// change the policy.
type refusal struct {
	reason string // a netpolicy.Reason* code
	msg    string
}

// decide applies pol to a request for host: the addresses the proxy may connect to, in
// the resolver's order, and the canonical name (empty for an address). A refusal names
// the host and the policy. A failed resolution is an error, not a refusal.
func (p *Proxy) decide(ctx context.Context, pol *policy, host string) (addrs []netip.Addr, name string, ref *refusal, err error) {
	if pol.mode == netpolicy.None {
		return nil, "", &refusal{netpolicy.ReasonNone, fmt.Sprintf(
			`sandbox %s has egress "none": it reaches nothing outside; change that with %s`, pol.sandbox, p.api(pol.sandbox))}, nil
	}
	name, ip, err := netpolicy.CanonicalHost(host)
	if err != nil {
		return nil, "", &refusal{netpolicy.ReasonBad, err.Error()}, nil
	}
	if ip.IsValid() {
		if class, never := p.never(ip); never {
			return nil, "", &refusal{netpolicy.ReasonAddress, fmt.Sprintf("%s is %s, which no sandbox may reach through the egress proxy", ip, class)}, nil
		}
		if pol.mode == netpolicy.Proxy && !pol.allow.Covers(ip) {
			return nil, "", &refusal{netpolicy.ReasonLiteral, fmt.Sprintf(
				"%s is an IP address, and no CIDR in this sandbox's allowlist (%s) covers it; list its name instead, or add a CIDR with %s",
				ip, listing(pol.allow), p.api(pol.sandbox))}, nil
		}
		return []netip.Addr{ip}, "", nil, nil
	}
	if pol.mode == netpolicy.Proxy && !pol.allow.AllowsName(name) {
		return nil, name, &refusal{netpolicy.ReasonNotListed, fmt.Sprintf(
			"%s is not in this sandbox's allowlist (%s); add it with %s", name, listing(pol.allow), p.api(pol.sandbox))}, nil
	}
	rctx, cancel := context.WithTimeout(ctx, p.resolveTimeout())
	defer cancel()
	found, err := p.resolver().LookupNetIP(rctx, "ip", name)
	if err != nil {
		return nil, name, nil, fmt.Errorf("cannot resolve %s: %w", name, err)
	}
	var why []string
	for _, a := range found {
		a = a.Unmap()
		if p.addrAllowed(pol, a) {
			addrs = append(addrs, a)
			continue
		}
		class, never := p.never(a)
		if !never {
			class = "not a public address"
		}
		why = append(why, a.String()+" ("+class+")")
	}
	if len(addrs) == 0 {
		msg := fmt.Sprintf("%s resolves to %s, which no sandbox may reach through the egress proxy", name, strings.Join(why, ", "))
		if pol.mode == netpolicy.Proxy {
			msg = fmt.Sprintf("%s resolves to %s; a listed name must resolve to a public address unless a CIDR in the allowlist (%s) covers it, and never to this host, a sandbox or a link-local address",
				name, strings.Join(why, ", "), listing(pol.allow))
		}
		return nil, name, &refusal{netpolicy.ReasonAddress, msg}, nil
	}
	return addrs, name, nil, nil
}

// addrAllowed reports whether pol lets a sandbox reach ip: never this host, a sandbox,
// loopback or link-local; in mode open anything else (the sandbox has its own route
// there anyway); in mode proxy a public address or one a listed CIDR covers.
func (p *Proxy) addrAllowed(pol *policy, ip netip.Addr) bool {
	if _, never := p.never(ip); never {
		return false
	}
	switch pol.mode {
	case netpolicy.Open:
		return true
	case netpolicy.Proxy:
		return netpolicy.Public(ip) || pol.allow.Covers(ip)
	}
	return false
}

// never reports an address no policy reaches, and what it is, for the refusal.
func (p *Proxy) never(ip netip.Addr) (class string, never bool) {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "a loopback address", true
	case ip.IsLinkLocalUnicast():
		return "a link-local address (the cloud metadata service is one)", true
	case netpolicy.Forbidden(ip):
		return "not a unicast address", true
	}
	for _, b := range p.Blocked {
		if b.Contains(ip) {
			return "a sandbox network's address", true
		}
	}
	if p.local.has(p.LocalAddrs, ip, p.now()) {
		return "an address of this host", true
	}
	return "", false
}

func (p *Proxy) resolver() Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// listing shows an allowlist in a refusal, cut short past a dozen entries.
func listing(a *netpolicy.Allowlist) string {
	e := a.Entries()
	if len(e) == 0 {
		return "it is empty"
	}
	const show = 12
	if len(e) > show {
		return strings.Join(e[:show], ", ") + fmt.Sprintf(" and %d more", len(e)-show)
	}
	return strings.Join(e, ", ")
}

// localAddrs caches this host's addresses for a few seconds: reading the interfaces costs
// a netlink dump, too much per request, and addresses change rarely (a new Docker network).
type localAddrs struct {
	mu    sync.Mutex
	at    time.Time
	addrs map[netip.Addr]bool
}

func (l *localAddrs) has(read func() ([]netip.Addr, error), ip netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.addrs == nil || now.Sub(l.at) > 5*time.Second || now.Before(l.at) {
		if read == nil {
			read = interfaceAddrs
		}
		list, err := read()
		if err == nil || l.addrs == nil {
			l.addrs = map[netip.Addr]bool{}
			for _, a := range list {
				l.addrs[a.Unmap()] = true
			}
			l.at = now
		}
	}
	return l.addrs[ip]
}

func interfaceAddrs() ([]netip.Addr, error) {
	list, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, pfx.Addr())
		}
	}
	return out, nil
}
