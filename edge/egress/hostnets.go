package egress

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// hostNets caches this host's addresses and bridged ranges for a few seconds: reading the
// interfaces costs a netlink dump, too much per request, and they change rarely (a new
// Docker network).
type hostNets struct {
	mu      sync.Mutex
	at      time.Time
	read    bool
	addrs   map[netip.Addr]bool
	bridges []netip.Prefix
}

func (h *hostNets) refresh(list func() ([]netip.Addr, []netip.Prefix, error), now time.Time) {
	if h.read && now.Sub(h.at) <= 5*time.Second && !now.Before(h.at) {
		return
	}
	if list == nil {
		list = interfaceNets
	}
	own, bridged, err := list()
	if err != nil && h.read {
		return // keep what was read last; try again at the next request
	}
	h.addrs = make(map[netip.Addr]bool, len(own))
	for _, a := range own {
		h.addrs[a.Unmap()] = true
	}
	h.bridges = bridged
	h.at, h.read = now, true
}

// own reports an address of this host.
func (h *hostNets) own(list func() ([]netip.Addr, []netip.Prefix, error), ip netip.Addr, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refresh(list, now)
	return h.addrs[ip]
}

// bridged reports an address on a network bridged on this host.
func (h *hostNets) bridged(list func() ([]netip.Addr, []netip.Prefix, error), ip netip.Addr, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refresh(list, now)
	for _, b := range h.bridges {
		if b.Contains(ip) {
			return true
		}
	}
	return false
}

// interfaceNets reads the host's interfaces: every address, and the ranges of those that
// are Linux bridges (/sys/class/net/<name>/bridge exists: docker0, br-*, virbr0, cni0).
func interfaceNets() ([]netip.Addr, []netip.Prefix, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, nil, err
	}
	var own []netip.Addr
	var bridged []netip.Prefix
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		_, serr := os.Stat("/sys/class/net/" + ifc.Name + "/bridge")
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			own = append(own, pfx.Addr().Unmap())
			if serr == nil {
				bridged = append(bridged, pfx.Masked())
			}
		}
	}
	return own, bridged, nil
}

// operatorList is the operator's allowlist, compiled once.
func (p *Proxy) operatorList() *netpolicy.Allowlist {
	p.operatorOnce.Do(func() { p.operatorAllow = netpolicy.Compile(p.operator) })
	return p.operatorAllow
}
