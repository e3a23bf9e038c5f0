package egress

import (
	"net/netip"
	"testing"
)

// This host's interfaces: loopback among its addresses, and every Docker bridge's range
// among the bridged ones (the engine's docker0 at least, when there is an engine).
func TestInterfaceNets(t *testing.T) {
	own, bridged, err := interfaceNets()
	if err != nil {
		t.Fatal(err)
	}
	var h hostNets
	h.addrs = map[netip.Addr]bool{}
	for _, a := range own {
		h.addrs[a] = true
	}
	if !h.addrs[netip.MustParseAddr("127.0.0.1")] {
		t.Fatalf("127.0.0.1 is not among this host's addresses: %v", own)
	}
	for _, b := range bridged {
		if b.Addr().IsLoopback() || b.Bits() == 0 {
			t.Fatalf("a bridged range that is not one: %v", b)
		}
	}
	t.Logf("%d addresses, bridged ranges %v", len(own), bridged)
}
