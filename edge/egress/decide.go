package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

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
		if p.host.bridged(p.HostNetworks, ip, p.now()) && !pol.operator.Covers(ip) {
			return nil, "", &refusal{netpolicy.ReasonAddress, fmt.Sprintf("%s is %s", ip, p.refusedClass(ip))}, nil
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
		why = append(why, a.String()+" ("+p.refusedClass(a)+")")
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
// loopback or link-local; a container or VM on a network bridged on this host only when
// the operator lists a CIDR that covers it; in mode open anything else (the sandbox has its
// own route there anyway); in mode proxy a public address or one a listed CIDR covers.
func (p *Proxy) addrAllowed(pol *policy, ip netip.Addr) bool {
	if _, never := p.never(ip); never {
		return false
	}
	if p.host.bridged(p.HostNetworks, ip, p.now()) {
		return pol.operator.Covers(ip)
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
	if p.host.own(p.HostNetworks, ip, p.now()) {
		return "an address of this host", true
	}
	return "", false
}

// refusedClass says why addrAllowed refused ip, for the refusal.
func (p *Proxy) refusedClass(ip netip.Addr) string {
	if class, never := p.never(ip); never {
		return class
	}
	if p.host.bridged(p.HostNetworks, ip, p.now()) {
		return "on a network bridged on this host, which only a CIDR in the operator's allowlist opens"
	}
	return "not a public address"
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
