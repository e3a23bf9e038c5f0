package egress

import (
	"net/netip"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// SetPolicy says that the sandbox at ip is sandbox, with egress mode and its own
// allowlist (normalized; the operator's is added). It takes effect for the sandbox's next
// request; its open tunnels that the new policy would refuse are closed at once. A
// sandbox that had another address loses that one; a sandbox that had this one (a
// container that died, whose address Docker gave again) loses it too.
func (p *Proxy) SetPolicy(ip netip.Addr, sandbox, mode string, allow []string) {
	ip = ip.Unmap()
	pol := &policy{sandbox: sandbox, mode: mode, allow: netpolicy.Compile(allow, p.operator), operator: p.operatorList()}
	p.mu.Lock()
	var stale []netip.Addr
	if old, ok := p.byID[sandbox]; ok && old != ip {
		if prev := p.byIP[old]; prev != nil && prev.sandbox == sandbox {
			delete(p.byIP, old)
			stale = append(stale, old)
		}
	}
	if prev := p.byIP[ip]; prev != nil && prev.sandbox != sandbox {
		delete(p.byID, prev.sandbox)
	}
	p.byIP[ip] = pol
	p.byID[sandbox] = ip
	p.mu.Unlock()
	for _, old := range stale {
		p.tunnels.cut(old, func(*tunnel) bool { return true })
	}
	p.tunnels.cut(ip, func(t *tunnel) bool { return t.sandbox != sandbox || !p.stillAllowed(pol, t) })
}

// Unset forgets the address of a sandbox that stopped: its requests are refused and its
// tunnels closed. Its counters stay for /metrics.
func (p *Proxy) Unset(sandbox string) {
	p.mu.Lock()
	ip, ok := p.byID[sandbox]
	if ok {
		delete(p.byID, sandbox)
		if prev := p.byIP[ip]; prev != nil && prev.sandbox == sandbox {
			delete(p.byIP, ip)
		} else {
			ok = false // the address is another sandbox's now
		}
	}
	p.mu.Unlock()
	if ok {
		p.tunnels.cut(ip, func(t *tunnel) bool { return t.sandbox == sandbox })
	}
}

// Forget is Unset for a sandbox that was deleted: its counters and denials go too.
func (p *Proxy) Forget(sandbox string) {
	p.Unset(sandbox)
	p.stats.forget(sandbox)
}

func (p *Proxy) lookup(ip netip.Addr) *policy {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.byIP[ip]
}

// Restricted reports whether a connection from ip to one of sandboxd's other listeners
// (the edge, the admin and E2B APIs) must be refused: ip is a sandbox whose mode is not
// open, or an address of the internal network that no sandbox holds now. Previews and APIs
// would otherwise be a way out of a sandbox that has none: a POST to another tenant's
// preview carries a workspace as well as any upload.
func (p *Proxy) Restricted(ip netip.Addr) bool {
	ip = ip.Unmap()
	if pol := p.lookup(ip); pol != nil {
		return pol.mode != netpolicy.Open
	}
	return p.Internal.IsValid() && p.Internal.Contains(ip)
}

// stillAllowed re-checks an open tunnel against a new policy, by the name it was opened
// for and the address it reached (not resolved again).
func (p *Proxy) stillAllowed(pol *policy, t *tunnel) bool {
	switch pol.mode {
	case netpolicy.Open:
		_, never := p.never(t.addr)
		return !never
	case netpolicy.Proxy:
		if t.name != "" && !pol.allow.AllowsName(t.name) || t.name == "" && !pol.allow.Covers(t.addr) {
			return false
		}
		return p.addrAllowed(pol, t.addr)
	}
	return false
}

// Operator returns the operator's allowlist, which the proxy adds to every sandbox's.
func (p *Proxy) Operator() []string { return p.operator }
