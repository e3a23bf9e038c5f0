package edge

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestParseHost(t *testing.T) {
	tests := []struct {
		name, host, domain string
		id                 string
		port               int
		ok                 bool
	}{
		{name: "plain", host: "s-abc-3000.preview.example.com", domain: "example.com", id: "abc", port: 3000, ok: true},
		{name: "with port", host: "s-abc-3000.preview.example.com:8080", domain: "example.com", id: "abc", port: 3000, ok: true},
		{name: "empty port suffix", host: "s-abc-3000.preview.example.com:", domain: "example.com", id: "abc", port: 3000, ok: true},
		{name: "upper case", host: "S-ABC-3000.PREVIEW.Example.COM", domain: "example.com", id: "abc", port: 3000, ok: true},
		{name: "upper case domain arg", host: "s-abc-3000.preview.example.com", domain: "EXAMPLE.com", id: "abc", port: 3000, ok: true},
		{name: "trailing dot", host: "s-abc-3000.preview.example.com.", domain: "example.com", id: "abc", port: 3000, ok: true},
		{name: "trailing dot and port", host: "s-abc-3000.preview.example.com.:80", domain: "example.com", id: "abc", port: 3000, ok: true},
		{name: "domain with trailing dot", host: "s-abc-3000.preview.example.com", domain: "example.com.", id: "abc", port: 3000, ok: true},
		{name: "localhost", host: "s-a-1.preview.localhost", domain: "localhost", id: "a", port: 1, ok: true},
		{name: "id with dashes", host: "s-my-app-2-5173.preview.x.io", domain: "x.io", id: "my-app-2", port: 5173, ok: true},
		{name: "ulid", host: "s-01jd5m3q7a8b9c0d1e2f3g4h5j-80.preview.x.io", domain: "x.io", id: "01jd5m3q7a8b9c0d1e2f3g4h5j", port: 80, ok: true},
		{name: "40 char id", host: "s-" + strings.Repeat("a", 40) + "-1.preview.x.io", domain: "x.io", id: strings.Repeat("a", 40), port: 1, ok: true},
		{name: "max port", host: "s-a-65535.preview.x.io", domain: "x.io", id: "a", port: 65535, ok: true},
		{name: "e2b form", host: "3000-abc.preview.example.com", domain: "example.com", id: "abc", port: 3000, ok: true},
		{name: "e2b form envd", host: "49983-01jd5m3q7a8b9c0d1e2f3g4h5j.preview.x.io:8080", domain: "x.io", id: "01jd5m3q7a8b9c0d1e2f3g4h5j", port: 49983, ok: true},
		{name: "e2b form id with dashes", host: "5173-my-app-2.preview.x.io", domain: "x.io", id: "my-app-2", port: 5173, ok: true},
		{name: "e2b form upper case", host: "80-ABC.PREVIEW.X.IO.", domain: "x.io", id: "abc", port: 80, ok: true},
		{name: "e2b form shortest", host: "1-a.preview.x.io", domain: "x.io", id: "a", port: 1, ok: true},
		{name: "id s", host: "s-s-1.preview.x.io", domain: "x.io", id: "s", port: 1, ok: true},

		{name: "41 char id", host: "s-" + strings.Repeat("a", 41) + "-1.preview.x.io", domain: "x.io"},
		{name: "port zero", host: "s-a-0.preview.x.io", domain: "x.io"},
		{name: "port too big", host: "s-a-65536.preview.x.io", domain: "x.io"},
		{name: "port leading zero", host: "s-a-080.preview.x.io", domain: "x.io"},
		{name: "port sign", host: "s-a-+80.preview.x.io", domain: "x.io"},
		{name: "port missing", host: "s-abc-.preview.x.io", domain: "x.io"},
		{name: "no port", host: "s-abc.preview.x.io", domain: "x.io"},
		{name: "id missing", host: "s--80.preview.x.io", domain: "x.io"},
		{name: "id leading dash", host: "s--a-80.preview.x.io", domain: "x.io"},
		{name: "id trailing dash", host: "s-a--80.preview.x.io", domain: "x.io"},
		{name: "id underscore", host: "s-a_b-80.preview.x.io", domain: "x.io"},
		{name: "id dot", host: "s-a.b-80.preview.x.io", domain: "x.io"},
		{name: "no s prefix", host: "abc-80.preview.x.io", domain: "x.io"},
		{name: "e2b form port zero", host: "0-abc.preview.x.io", domain: "x.io"},
		{name: "e2b form leading zero", host: "080-abc.preview.x.io", domain: "x.io"},
		{name: "e2b form port too big", host: "65536-abc.preview.x.io", domain: "x.io"},
		{name: "e2b form no id", host: "80-.preview.x.io", domain: "x.io"},
		{name: "e2b form no dash", host: "80.preview.x.io", domain: "x.io"},
		{name: "e2b form id leading dash", host: "80--abc.preview.x.io", domain: "x.io"},
		{name: "e2b form id trailing dash", host: "80-abc-.preview.x.io", domain: "x.io"},
		{name: "e2b form 41 char id", host: "80-" + strings.Repeat("a", 41) + ".preview.x.io", domain: "x.io"},
		{name: "other prefix", host: "t-abc-80.preview.x.io", domain: "x.io"},
		{name: "wrong domain", host: "s-abc-80.preview.y.io", domain: "x.io"},
		{name: "domain suffix only", host: "s-abc-80.preview.xx.io", domain: "x.io"},
		{name: "no preview label", host: "s-abc-80.x.io", domain: "x.io"},
		{name: "extra label", host: "s-abc-80.a.preview.x.io", domain: "x.io"},
		{name: "apex", host: "x.io", domain: "x.io"},
		{name: "empty", host: "", domain: "x.io"},
		{name: "empty domain", host: "s-a-1.preview.", domain: ""},
		{name: "bad port suffix", host: "s-abc-80.preview.x.io:http", domain: "x.io"},
		{name: "two colons", host: "s-abc-80.preview.x.io:1:2", domain: "x.io"},
		{name: "ipv6 literal", host: "[::1]:8080", domain: "x.io"},
		{name: "ipv6 bare", host: "::1", domain: "x.io"},
		{name: "ipv4", host: "127.0.0.1:80", domain: "x.io"},
		{name: "kelvin sign is not k", host: "s-a-1.preview.\u212a.io", domain: "k.io"},
		{name: "control byte in id", host: "s-a\r-1.preview.x.io", domain: "x.io"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, port, ok := ParseHost(tc.host, tc.domain)
			if id != tc.id || port != tc.port || ok != tc.ok {
				t.Errorf("ParseHost(%q, %q) = %q, %d, %v; want %q, %d, %v",
					tc.host, tc.domain, id, port, ok, tc.id, tc.port, tc.ok)
			}
		})
	}
}

func TestParseHostAllocations(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		ParseHost("s-my-app-3000.preview.example.com:443", "example.com")
		ParseHost("3000-my-app.preview.example.com:443", "example.com")
	})
	if n != 0 {
		t.Errorf("ParseHost allocates %v times per lower-case host, want 0", n)
	}
}

// idPattern is the contract's id syntax, checked independently of validID.
var idPattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$`)

func FuzzParseHost(f *testing.F) {
	f.Add("s-abc-3000.preview.example.com", "example.com")
	f.Add("S-My-App-8080.Preview.EXAMPLE.com.:443", "example.com")
	f.Add("s-a-1.preview.localhost", "localhost")
	f.Add("[::1]:80", "localhost")
	f.Add("s--1.preview.x", "x")
	f.Add("3000-abc.preview.example.com", "example.com")
	f.Fuzz(func(t *testing.T, host, domain string) {
		id, port, ok := ParseHost(host, domain)
		if !ok {
			if id != "" || port != 0 {
				t.Fatalf("not ok but returned %q, %d", id, port)
			}
			return
		}
		if !idPattern.MatchString(id) {
			t.Fatalf("ParseHost(%q, %q) returned invalid id %q", host, domain, id)
		}
		if port < 1 || port > 65535 {
			t.Fatalf("ParseHost(%q, %q) returned port %d", host, domain, port)
		}
		again := "s-" + id + "-" + strconv.Itoa(port) + ".preview." + domain
		id2, port2, ok2 := ParseHost(again, domain)
		if !ok2 || id2 != id || port2 != port {
			t.Fatalf("re-formatted %q parsed as %q, %d, %v; want %q, %d", again, id2, port2, ok2, id, port)
		}
		if id3, port3, ok3 := ParseHost(upperASCII(again), domain); !ok3 || id3 != id || port3 != port {
			t.Fatalf("upper-cased %q parsed as %q, %d, %v", again, id3, port3, ok3)
		}
		// Both forms name the same sandbox port.
		e2b := strconv.Itoa(port) + "-" + id + ".preview." + domain
		if id4, port4, ok4 := ParseHost(e2b, domain); !ok4 || id4 != id || port4 != port {
			t.Fatalf("E2B form %q parsed as %q, %d, %v; want %q, %d", e2b, id4, port4, ok4, id, port)
		}
	})
}

// upperASCII upper-cases ASCII letters only; strings.ToUpper would also
// rewrite invalid UTF-8, which is not a change of letter case.
func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// A host on the preview domain that is not a preview host hears what one looks like, with
// its own id and port when it has them; a host that is not ours hears nothing more.
func TestHostHint(t *testing.T) {
	const shape = "a preview host is s-<id>-<port>.preview.localhost, like "
	tests := []struct{ host, domain, want string }{
		{"s-demo.preview.localhost", "localhost", shape + "s-demo-3000.preview.localhost"},
		{"s-demo.preview.localhost:8080", "localhost", shape + "s-demo-3000.preview.localhost"},
		{"S-Demo.Preview.LOCALHOST.", "localhost", shape + "s-demo-3000.preview.localhost"},
		{"s-demo-5173.localhost", "localhost", shape + "s-demo-5173.preview.localhost"},
		{"s-my-app.preview.localhost", "localhost", shape + "s-my-app-3000.preview.localhost"},
		{"s-demo-0.preview.localhost", "localhost", "0 is not a port (1 to 65535, no leading zero); " + shape + "s-demo-3000.preview.localhost"},
		{"s-demo-99999.preview.localhost", "localhost", "99999 is not a port (1 to 65535, no leading zero); " + shape + "s-demo-3000.preview.localhost"},
		{"s-demo-03000.preview.localhost", "localhost", "03000 is not a port (1 to 65535, no leading zero); " + shape + "s-demo-3000.preview.localhost"},
		{"s-demo-abc.preview.localhost", "localhost", shape + "s-demo-abc-3000.preview.localhost"},
		{"demo.preview.localhost", "localhost", shape + "s-abc123-3000.preview.localhost"},
		{"s-<script>.preview.localhost", "localhost", shape + "s-abc123-3000.preview.localhost"},
		{"localhost:8080", "localhost", shape + "s-abc123-3000.preview.localhost"},
		{"s-demo.preview.example.com", "Example.com", "a preview host is s-<id>-<port>.preview.example.com, like s-demo-3000.preview.example.com"},
		{"example.com", "localhost", ""},
		{"notlocalhost", "localhost", ""},
		{"127.0.0.1:80", "localhost", ""},
		{"[::1]:80", "localhost", ""},
		{"", "localhost", ""},
		{"s-demo.preview.localhost", "", ""},
	}
	for _, tc := range tests {
		if got := hostHint(tc.host, tc.domain); got != tc.want {
			t.Errorf("hostHint(%q, %q) = %q, want %q", tc.host, tc.domain, got, tc.want)
		}
	}
}
