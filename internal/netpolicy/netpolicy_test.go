package netpolicy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNormalizeAccepts(t *testing.T) {
	got, err := Normalize("allow", []string{
		"Registry.NPMJS.org.", "*.GitHub.com", "10.1.2.0/24", "1.2.3.4", "2001:db8::/32",
		"::ffff:5.6.7.8", "registry.npmjs.org", "_acme.example.com", "localhost", "0.0.0.0/0",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"registry.npmjs.org", "*.github.com", "10.1.2.0/24", "1.2.3.4/32", "2001:db8::/32",
		"5.6.7.8/32", "_acme.example.com", "localhost", "0.0.0.0/0"}
	if !slices.Equal(got, want) {
		t.Fatalf("Normalize = %q, want %q", got, want)
	}
}

// Every bad entry is refused with an error naming the field, the index and the way out.
func TestNormalizeRefuses(t *testing.T) {
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60) + ".eeeeeeeeeeee.com"
	for _, tc := range []struct{ entry, want string }{
		{"", "allow[1] is empty"},
		{"*", "would allow every host"},
		{"*.", "needs a domain after the *."},
		{"*.*.example.com", "* is allowed only as the whole first label"},
		{"a.*.example.com", "* is allowed only as the whole first label"},
		{"10.1.2.0/33", "is not a valid CIDR"},
		{"10.1.2.3/24", "did you mean 10.1.2.0/24?"},
		{"https://registry.npmjs.org/pkg", `is a URL: give the host only, like registry.npmjs.org`},
		{"registry.npmjs.org/pkg", "has a path"},
		{"registry.npmjs.org:443", "has a port"},
		{"exa mple.com", `' ' is not allowed`},
		{"example..com", "empty label"},
		{"-example.com", "starts or ends with '-'"},
		{"127.1", "reads as a number"},
		{"0x7f.0x1", "reads as a number"},
		{long, "characters; at most 253"},
		{"fe80::1%eth0", "has a zone"},
		{"bücher.de", "is not allowed in a host name"},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			_, err := Normalize("allow", []string{"ok.example", tc.entry})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "allow[1] ") {
				t.Fatalf("Normalize(%q) = %v, want an error starting allow[1] and saying %q", tc.entry, err, tc.want)
			}
		})
	}
	many := make([]string, MaxEntries+1)
	for i := range many {
		many[i] = "a.example"
	}
	if _, err := Normalize("network.allow", many); err == nil || !strings.Contains(err.Error(), "network.allow has 257 entries") {
		t.Fatalf("too many entries: %v", err)
	}
}

func TestAllowlistMatches(t *testing.T) {
	a := Compile([]string{"registry.npmjs.org", "*.github.com", "10.1.2.0/24"}, []string{"*.github.com", "pypi.org"})
	if got := a.Entries(); !slices.Equal(got, []string{"registry.npmjs.org", "*.github.com", "10.1.2.0/24", "pypi.org"}) {
		t.Fatalf("entries %q", got)
	}
	for name, want := range map[string]bool{
		"registry.npmjs.org": true, "pypi.org": true, "api.github.com": true, "a.b.github.com": true,
		"github.com": false, "evilgithub.com": false, "npmjs.org": false, "registry.npmjs.org.evil": false,
	} {
		if got := a.AllowsName(name); got != want {
			t.Errorf("AllowsName(%q) = %v, want %v", name, got, want)
		}
	}
	for ip, want := range map[string]bool{"10.1.2.7": true, "::ffff:10.1.2.7": true, "10.1.3.1": false} {
		if got := a.Covers(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Covers(%s) = %v, want %v", ip, got, want)
		}
	}
	var zero Allowlist
	if zero.AllowsName("a.com") || zero.Covers(netip.MustParseAddr("1.1.1.1")) {
		t.Fatal("the zero Allowlist allows something")
	}
}

func TestCanonicalHost(t *testing.T) {
	for _, tc := range []struct{ in, name, ip string }{
		{"Example.COM.", "example.com", ""},
		{"[2001:db8::1]", "", "2001:db8::1"},
		{"::ffff:10.0.0.1", "", "10.0.0.1"},
		{"10.0.0.1", "", "10.0.0.1"},
	} {
		name, ip, err := CanonicalHost(tc.in)
		if err != nil || name != tc.name || (tc.ip != "" && ip.String() != tc.ip) || (tc.ip == "" && ip.IsValid()) {
			t.Errorf("CanonicalHost(%q) = %q, %v, %v", tc.in, name, ip, err)
		}
	}
	for _, bad := range []string{"", "a b", "0x7f.1", "2130706433", "fe80::1%eth0", "x..y"} {
		if _, _, err := CanonicalHost(bad); err == nil {
			t.Errorf("CanonicalHost(%q) accepted", bad)
		}
	}
}

func TestAddressClasses(t *testing.T) {
	for _, tc := range []struct {
		ip                string
		public, forbidden bool
	}{
		{"93.184.215.14", true, false},
		{"2606:4700::1", true, false},
		{"10.1.2.3", false, false},
		{"172.17.0.1", false, false},
		{"192.168.1.1", false, false},
		{"100.64.0.1", false, false},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"169.254.169.254", false, true},
		{"fe80::1", false, true},
		{"0.0.0.0", false, true},
		{"0.1.2.3", false, true},
		{"224.0.0.1", false, true},
		{"255.255.255.255", false, true},
		{"64:ff9b::a01:203", false, false},
		{"2002:a01:203::", false, false},
		{"fd00::1", false, false},
	} {
		ip := netip.MustParseAddr(tc.ip)
		if got := Public(ip); got != tc.public {
			t.Errorf("Public(%s) = %v", tc.ip, got)
		}
		if got := Forbidden(ip); got != tc.forbidden {
			t.Errorf("Forbidden(%s) = %v", tc.ip, got)
		}
	}
}

func TestModes(t *testing.T) {
	if ModeList() != `"none", "proxy" or "open"` || !ValidMode(Proxy) || ValidMode("") || ValidMode("Open") {
		t.Fatal(ModeList())
	}
}
