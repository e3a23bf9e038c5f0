package egress

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
)

// A sandbox in mode proxy reaches a listed name by plain HTTP and by CONNECT, and
// nothing else: each refusal is a 403 whose body names the host, the policy and the fix.
func TestProxyMode(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	c := h.sandbox("127.0.0.2", "sb1", netpolicy.Proxy, "allowed.example", "*.wild.example", "loop.example",
		"private.example", "meta.example", "self.example", "sandbox.example", "mixed.example")

	if code, body := c.get("http://allowed.example/x"); code != 200 || body != "hello allowed.example via HTTP/1.1" {
		t.Fatalf("plain HTTP: %d %q", code, body)
	}
	if code, body := c.get("https://allowed.example/"); code != 200 || body != "hello allowed.example via HTTP/1.1" {
		t.Fatalf("CONNECT: %d %q", code, body)
	}
	if code, _ := c.get("http://sub.wild.example/"); code != 200 {
		t.Fatalf("wildcard: %d", code)
	}
	if code, _ := c.get("http://operator.example/"); code != 200 {
		t.Fatalf("the operator's list: %d", code)
	}
	// A name that resolves to loopback and a public address is reached at the public one.
	if code, _ := c.get("http://mixed.example/"); code != 200 {
		t.Fatalf("mixed: %d", code)
	}

	for _, tc := range []struct{ authority, reason, want string }{
		{"other.example:443", netpolicy.ReasonNotListed, "other.example is not in this sandbox's allowlist (allowed.example, *.wild.example, loop.example, private.example, meta.example, self.example, sandbox.example, mixed.example, operator.example); add it with PUT /v1/sandboxes/sb1/network"},
		{"wild.example:443", netpolicy.ReasonNotListed, "wild.example is not in this sandbox's allowlist"},
		{publicAddr + ":443", netpolicy.ReasonLiteral, publicAddr + " is an IP address, and no CIDR in this sandbox's allowlist"},
		{"127.0.0.1:443", netpolicy.ReasonAddress, "127.0.0.1 is a loopback address"},
		{"[::1]:443", netpolicy.ReasonAddress, "::1 is a loopback address"},
		{"169.254.169.254:80", netpolicy.ReasonAddress, "link-local"},
		{"loop.example:443", netpolicy.ReasonAddress, "loop.example resolves to 127.0.0.1 (a loopback address)"},
		{"private.example:443", netpolicy.ReasonAddress, "10.9.8.7 (not a public address)"},
		{"meta.example:80", netpolicy.ReasonAddress, "169.254.169.254 (a link-local address"},
		{"self.example:443", netpolicy.ReasonAddress, "192.0.2.1 (an address of this host)"},
		{"sandbox.example:443", netpolicy.ReasonAddress, "172.30.0.5 (a sandbox network's address)"},
	} {
		tc := tc
		t.Run(tc.authority, func(t *testing.T) {
			tun := c.connect(tc.authority)
			if tun.status != 403 || !strings.Contains(tun.body, tc.want) {
				t.Fatalf("CONNECT %s: %d %q, want 403 saying %q", tc.authority, tun.status, tun.body, tc.want)
			}
		})
	}
	code, body := c.get("http://other.example/")
	if code != 403 || !strings.Contains(body, "other.example is not in this sandbox's allowlist") {
		t.Fatalf("plain HTTP to an unlisted name: %d %q", code, body)
	}
	for _, d := range h.dials() {
		if !strings.HasPrefix(d, publicAddr+":") {
			t.Errorf("the proxy dialed %s, which the policy refuses", d)
		}
	}
	recent := h.p.DeniedRecent("sb1")
	if len(recent) != 8 || recent[0].Host != "other.example" || recent[0].Reason != netpolicy.ReasonNotListed {
		t.Fatalf("denied_recent = %+v, want 8, newest first", recent)
	}
}

// A listed CIDR lets a sandbox reach the addresses it covers, by name or as a literal,
// but never this host, a sandbox or loopback, whatever it covers.
func TestProxyCIDR(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	c := h.sandbox("127.0.0.3", "sb2", netpolicy.Proxy, "private.example", "10.0.0.0/8", "93.184.215.0/24", "0.0.0.0/0")
	for _, url := range []string{"http://private.example/", "http://10.9.8.7/", "http://" + publicAddr + "/"} {
		if code, body := c.get(url); code != 200 {
			t.Fatalf("%s: %d %q", url, code, body)
		}
	}
	for _, authority := range []string{"127.0.0.1:80", "192.0.2.1:80", "172.30.0.9:80", "169.254.169.254:80"} {
		if tun := c.connect(authority); tun.status != 403 {
			t.Fatalf("%s: %d %q", authority, tun.status, tun.body)
		}
	}
}

// Mode none refuses everything; mode open allows any name and any address but this host,
// a sandbox, loopback and link-local.
func TestProxyNoneAndOpen(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	none := h.sandbox("127.0.0.4", "sbnone", netpolicy.None, "allowed.example")
	tun := none.connect("allowed.example:443")
	if tun.status != 403 || !strings.Contains(tun.body, `sandbox sbnone has egress "none"`) {
		t.Fatalf("none: %d %q", tun.status, tun.body)
	}
	open := h.sandbox("127.0.0.5", "sbopen", netpolicy.Open)
	for _, url := range []string{"http://other.example/", "http://private.example/", "http://10.9.8.7/", "https://other.example/"} {
		if code, body := open.get(url); code != 200 {
			t.Fatalf("open %s: %d %q", url, code, body)
		}
	}
	for _, authority := range []string{"loop.example:80", "meta.example:80", "self.example:80", "sandbox.example:80", "127.0.0.1:9090"} {
		if tun := open.connect(authority); tun.status != 403 {
			t.Fatalf("open %s: %d %q", authority, tun.status, tun.body)
		}
	}
}

// Requests the proxy does not serve get 400 that says what to do instead; a source that
// is no sandbox is closed at once.
func TestProxyRefusesOtherRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	c := h.sandbox("127.0.0.6", "sb6", netpolicy.Open)
	tun := c.connect("allowed.example")
	if tun.status != 400 || !strings.Contains(tun.body, "want host:port") {
		t.Fatalf("CONNECT without a port: %d %q", tun.status, tun.body)
	}
	for _, raw := range []string{
		"GET https://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: allowed.example\r\n\r\n",
	} {
		code, body := rawRequest(t, c, raw)
		if code != 400 || !strings.Contains(body, "egress proxy") && !strings.Contains(body, "CONNECT") {
			t.Fatalf("%q: %d %q", raw, code, body)
		}
	}
	stranger := h.client("127.0.0.7")
	if tun := stranger.connect("allowed.example:443"); tun.status != 0 {
		t.Fatalf("a source that is no sandbox got %d %q", tun.status, tun.body)
	}
}

// A policy change applies to the next request at once, and closes the open tunnels it
// no longer allows (and only those); Unset closes them all.
func TestPolicyChangeCutsTunnels(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	c := h.sandbox("127.0.0.8", "sb8", netpolicy.Proxy, "allowed.example", "other.example")
	a := c.connect("allowed.example:80")
	b := c.connect("other.example:80")
	if a.status != 200 || b.status != 200 {
		t.Fatalf("tunnels: %d %d", a.status, b.status)
	}
	if got := a.get(t, "allowed.example"); got != "hello allowed.example via HTTP/1.1" {
		t.Fatalf("through the tunnel: %q", got)
	}
	h.p.SetPolicy(netip.MustParseAddr("127.0.0.8"), "sb8", netpolicy.Proxy, []string{"allowed.example"})
	b.closed(t)
	if got := a.get(t, "allowed.example"); !strings.HasPrefix(got, "hello") {
		t.Fatalf("the allowed tunnel broke: %q", got)
	}
	if tun := c.connect("other.example:80"); tun.status != 403 {
		t.Fatalf("after the change: %d", tun.status)
	}
	h.p.Unset("sb8")
	a.closed(t)
}

// Connections are bounded per sandbox: one over the bound gets 429 and counts as denied.
func TestConnectionBound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(p *Proxy) { p.MaxConnsPerSandbox = 2 })
	c := h.sandbox("127.0.0.9", "sb9", netpolicy.Open)
	c.connect("allowed.example:80")
	c.connect("allowed.example:80")
	tun := c.connect("allowed.example:80")
	if tun.status != 429 || !strings.Contains(tun.body, "sandbox sb9 may have 2 at once") {
		t.Fatalf("third connection: %d %q", tun.status, tun.body)
	}
	other := h.sandbox("127.0.0.10", "sb10", netpolicy.Open)
	if tun := other.connect("allowed.example:80"); tun.status != 200 {
		t.Fatalf("another sandbox is held back: %d", tun.status)
	}
	var got [][3]any
	h.p.Counts(func(id string, allowed, denied uint64) { got = append(got, [3]any{id, allowed, denied}) })
	if !slices.Equal(got, [][3]any{{"sb10", uint64(1), uint64(0)}, {"sb9", uint64(2), uint64(1)}}) {
		t.Fatalf("counts %v", got)
	}
}

// A tunnel through which nothing moves for IdleTimeout is closed.
func TestIdleTunnelCloses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(p *Proxy) { p.IdleTimeout = 50 * time.Millisecond })
	c := h.sandbox("127.0.0.11", "sb11", netpolicy.Open)
	tun := c.connect("allowed.example:80")
	if tun.status != 200 {
		t.Fatal(tun.status)
	}
	tun.closed(t)
}

// A container or VM on a network bridged on this host is out of a sandbox's reach (the
// host passes Docker's isolation of networks), even in mode open and even when the
// sandbox lists its CIDR; only the operator's list opens it.
func TestBridgedNetworks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	c := h.sandbox("127.0.0.12", "sb12", netpolicy.Open, bridgedNet)
	for _, authority := range []string{"bridged.example:80", bridgedAddr + ":80"} {
		if tun := c.connect(authority); tun.status != 403 || !strings.Contains(tun.body, "on a network bridged on this host") {
			t.Fatalf("%s: %d %q", authority, tun.status, tun.body)
		}
	}
	h2 := newHarness(t, func(p *Proxy) { p.operator = append(p.operator, bridgedNet) })
	c2 := h2.sandbox("127.0.0.13", "sb13", netpolicy.Proxy, "bridged.example")
	if code, body := c2.get("http://bridged.example/"); code != 200 {
		t.Fatalf("with the operator's CIDR: %d %q", code, body)
	}
	if code, body := c2.get("http://" + bridgedAddr + "/"); code != 200 {
		t.Fatalf("the address, with the operator's CIDR: %d %q", code, body)
	}
}
