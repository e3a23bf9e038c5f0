package egress

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// Guard closes connections from sandboxes without open egress, and from addresses of the
// internal network no sandbox holds; an open sandbox and anything outside get through.
func TestGuard(t *testing.T) {
	t.Parallel()
	p := New(nil, nil)
	p.Internal = netip.MustParsePrefix("127.0.0.16/28")
	p.SetPolicy(netip.MustParseAddr("127.0.0.17"), "open1", netpolicy.Open, nil)
	p.SetPolicy(netip.MustParseAddr("127.0.0.18"), "proxy1", netpolicy.Proxy, nil)
	p.SetPolicy(netip.MustParseAddr("127.0.0.19"), "none1", netpolicy.None, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := p.Guard(ln)
	t.Cleanup(func() { g.Close() })
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			c, err := g.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("welcome\n"))
			c.Close()
		}
	}()
	t.Cleanup(func() { g.Close(); <-served })
	for src, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.17": true, "127.0.0.18": false, "127.0.0.19": false, "127.0.0.20": false,
	} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if got := line == "welcome\n"; got != want {
			t.Errorf("from %s: served %v, want %v", src, got, want)
		}
	}
	// A sandbox that stopped leaves an address of the internal network: refused too.
	p.Unset("open1")
	if !p.Restricted(netip.MustParseAddr("127.0.0.17")) {
		t.Fatal("an unset sandbox's address is not restricted")
	}
}

// SetPolicy for an address another sandbox held (Docker gave it again) takes it from
// that sandbox, and a sandbox's new address replaces its old one.
func TestAddressChangesHands(t *testing.T) {
	t.Parallel()
	p := New(nil, nil)
	a, b := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	p.SetPolicy(a, "one", netpolicy.Open, nil)
	p.SetPolicy(a, "two", netpolicy.Proxy, nil)
	p.Unset("one") // late news of the first sandbox's stop must not unset the second
	if pol := p.lookup(a); pol == nil || pol.sandbox != "two" {
		t.Fatalf("address a: %+v", pol)
	}
	p.SetPolicy(b, "two", netpolicy.Proxy, nil)
	if p.lookup(a) != nil || p.lookup(b) == nil {
		t.Fatal("the sandbox's old address is still its")
	}
}
