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

// interfaceNets reads the host's addresses (one netlink dump, however many veths a
// host of sandboxes has), and the ranges of its Linux bridges (the interfaces with a
// /sys/class/net/<name>/bridge: docker0, br-*, virbr0, cni0).
func interfaceNets() ([]netip.Addr, []netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, nil, err
	}
	own := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			own = append(own, pfx.Addr().Unmap())
		}
	}
	var bridged []netip.Prefix
	entries, _ := os.ReadDir("/sys/class/net")
	for _, e := range entries {
		if _, err := os.Stat("/sys/class/net/" + e.Name() + "/bridge"); err != nil {
			continue
		}
		ifc, err := net.InterfaceByName(e.Name())
		if err != nil {
			continue
		}
		list, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range list {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil {
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
