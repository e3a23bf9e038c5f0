package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/edge/tlstest"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/miekg/dns"
	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
)

// Issue 15, against the engine: what a sandbox reaches in each egress mode, with the
// test's own internet (egressWorld), so nothing leaves the machine.
func TestEgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	world := newEgressWorld(t, e.docker)
	gw := makeNetwork(t, e.docker, e.vars["SANDBOXD_NETWORK"], false)
	// The edge on the sandboxes' gateway, where a sandbox reaches it; the operator allows
	// the test's "registry" by its address.
	e.vars["SANDBOXD_HTTP_BIND"] = gw.String() + ":0"
	e.vars["SANDBOXD_EGRESS_RESOLVER"] = world.dns
	e.vars["SANDBOXD_EGRESS_ALLOW"] = world.ip.String() + "/32"
	e.vars["SANDBOXD_EGRESS_PROXY_PORT"] = "0"
	d := e.start()
	api := netip.MustParseAddrPort(strings.TrimPrefix(d.API, "http://"))
	edgePort := netip.MustParseAddrPort(d.HTTP).Port()

	p := mustCreate(t, d, map[string]any{"ports": []int{3000}, "env": map[string]string{"SSL_CERT_FILE": "/home/sandbox/ca.pem"},
		"network": map[string]any{"egress": "proxy", "allow": []string{"allowed.test", "loop.test"}}})
	n := mustCreate(t, d, map[string]any{"ports": []int{3000}, "network": map[string]any{"egress": "none"}})
	mustFile(t, "PUT", d.API+"/v1/sandboxes/"+p.ID+"/files?path=ca.pem", string(world.cert), http.StatusCreated)
	// The testkit's curl, built from this tree into the workspaces: the shared image may
	// be older than the test.
	fetchBin, err := os.ReadFile(dockertest.Binary(t, "./images/testkit/fetch"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{p.ID, n.ID} {
		mustFile(t, "PUT", d.API+"/v1/sandboxes/"+id+"/files?path=fetch", string(fetchBin), http.StatusCreated)
		mustExec(t, d, id, "chmod", "755", "fetch")
	}

	// fetch runs the testkit's curl in a sandbox: through the proxy its env names.
	fetch := func(id, url string) (int, string) {
		t.Helper()
		res := mustExec(t, d, id, "./fetch", "-timeout", "5s", url)
		code, body, _ := strings.Cut(res.Stdout, "\n")
		var status int
		fmt.Sscan(code, &status)
		return status, body + res.Stderr
	}
	// direct connects with no proxy; ok reports an answer. (busybox wget's own -T
	// crashes it: timeout ends it instead.)
	direct := func(id, url string, header ...string) (ok bool, out string) {
		t.Helper()
		cmd := []string{"timeout", "2", "wget", "-Y", "off", "-q", "-O-"}
		for _, h := range header {
			cmd = append(cmd, "--header", h)
		}
		res := mustExec(t, d, id, append(cmd, url)...)
		return res.ExitCode == 0, res.Stdout + res.Stderr
	}
	registry := "http://" + world.ip.String() + ":8080/"
	previewHost := func(id string) string { return fmt.Sprintf("Host: s-%s-3000.preview.localhost", id) }
	edgeOnGateway := fmt.Sprintf("http://%s:%d/", gw, edgePort)

	t.Run("proxy", func(t *testing.T) {
		// busybox wget uses http_proxy for plain HTTP, as curl does.
		if res := mustExec(t, d, p.ID, "wget", "-q", "-O-", "http://allowed.test:8080/"); res.ExitCode != 0 || !strings.HasPrefix(res.Stdout, "hello from ") {
			t.Fatalf("wget through the proxy: %+v", res)
		}
		// https:// through a CONNECT tunnel, as npm, pip and git do with HTTPS_PROXY.
		if code, body := fetch(p.ID, "https://allowed.test:8443/"); code != 200 || !strings.HasPrefix(body, "hello from ") {
			t.Fatalf("https through the proxy: %d %q", code, body)
		}
		// A refused CONNECT is a 403 (its body, which Go's client does not show, is the
		// one plain HTTP shows below).
		if code, body := fetch(p.ID, "https://other.test:8443/"); code != 0 || !strings.Contains(body, "Forbidden") {
			t.Errorf("https to an unlisted name: %d %q, want a refused CONNECT", code, body)
		}
		for _, tc := range []struct{ url, want string }{
			{"http://other.test:8080/", "other.test is not in this sandbox's allowlist (allowed.test, loop.test, " + world.ip.String() + "/32); add it with PUT /v1/sandboxes/" + p.ID + "/network"},
			// An address no CIDR covers (documentation range: refused before any dial).
			{"http://198.51.100.7:8080/", "198.51.100.7 is an IP address, and no CIDR"},
			// The registry's neighbour: on a network bridged on this host.
			{"http://" + world.other.String() + ":8080/", world.other.String() + " is on a network bridged on this host"},
			{"http://loop.test:8080/", "loop.test resolves to 127.0.0.1 (a loopback address)"},
		} {
			if code, body := fetch(p.ID, tc.url); code != 403 || !strings.Contains(body, tc.want) {
				t.Errorf("%s: %d %q, want 403 saying %q", tc.url, code, body, tc.want)
			}
		}
		if ok, out := direct(p.ID, registry); ok {
			t.Fatalf("a direct connection bypassed the proxy: %q", out)
		}
		// A change applies to the very next request, with no restart.
		var sb struct{ Network struct{ Allow []string } }
		body := map[string]any{"egress": "proxy", "allow": []string{"allowed.test", "other.test"}}
		if code := call(t, "PUT", d.API+"/v1/sandboxes/"+p.ID+"/network", body, &sb); code != 200 {
			t.Fatalf("PUT network: %d", code)
		}
		if code, body := fetch(p.ID, "https://other.test:8443/"); code != 200 {
			t.Fatalf("after adding other.test: %d %q", code, body)
		}
		var view struct {
			Network struct {
				DeniedRecent []struct{ Host, Reason string } `json:"denied_recent"`
			}
		}
		getSandboxInto(t, d, p.ID, &view)
		if dr := view.Network.DeniedRecent; len(dr) != 5 || dr[0].Host != "loop.test:8080" || dr[4].Host != "other.test:8443" || dr[4].Reason != "not_listed" {
			t.Fatalf("denied_recent %+v", dr)
		}
		if v := scrape(t, d, `sandboxd_egress_sandbox_requests_total{decision="denied",sandbox="`+p.ID+`"}`); v != 5 {
			t.Fatalf("denied in /metrics: %v", v)
		}
	})

	t.Run("none", func(t *testing.T) {
		if code, body := fetch(n.ID, "http://allowed.test:8080/"); code != 403 || !strings.Contains(body, `egress "none"`) {
			t.Fatalf("through the proxy: %d %q", code, body)
		}
		if ok, out := direct(n.ID, registry); ok {
			t.Fatalf("a direct connection got out: %q", out)
		}
		if _, body := preview(t, d, n.ID, 3000, "GET", "/", "", nil); !strings.HasPrefix(body, "hello from ") {
			t.Fatalf("preview: %q", body)
		}
		// sandboxd's listeners refuse it, so no preview is a way out.
		if ok, out := direct(n.ID, edgeOnGateway, previewHost(n.ID)); ok {
			t.Fatalf("the edge answered a sandbox without egress: %q", out)
		}
	})

	// What a sandbox reaches on this host, as README's Egress section says: the edge and
	// the egress proxy; not the API on loopback; and, whatever its mode, any other
	// service listening on an address of this host (the operator's firewall closes those).
	t.Run("gateway", func(t *testing.T) {
		hostService := listenOn(t, gw, "a host service")
		if ok, out := direct(n.ID, hostService); !ok || out != "a host service" {
			t.Fatalf("none: the host service: %v %q", ok, out)
		}
		var sb sandboxJSON
		if code := call(t, "PUT", d.API+"/v1/sandboxes/"+p.ID+"/network", map[string]any{"egress": "open"}, &sb); code != 200 || sb.IP != p.IP {
			t.Fatalf("PUT open: %d, address %s (was %s)", code, sb.IP, p.IP)
		}
		if ok, out := direct(p.ID, edgeOnGateway, previewHost(p.ID)); !ok || !strings.HasPrefix(out, "hello from ") {
			t.Fatalf("open: the edge on the gateway: %v %q", ok, out)
		}
		if ok, out := direct(p.ID, fmt.Sprintf("http://%s:%d/healthz", gw, api.Port())); ok {
			t.Fatalf("open: the admin API answered on the gateway: %q", out)
		}
		if ok, out := direct(p.ID, hostService); !ok {
			t.Fatalf("open: the host service: %q", out)
		}
		if code, body := fetch(p.ID, "https://other.test:8443/"); code != 200 {
			t.Fatalf("open: through the proxy: %d %q", code, body)
		}
		if _, body := preview(t, d, p.ID, 3000, "GET", "/", "", nil); !strings.HasPrefix(body, "hello from ") {
			t.Fatalf("preview after the change: %q", body)
		}
		if code := call(t, "PUT", d.API+"/v1/sandboxes/"+p.ID+"/network", map[string]any{"egress": "proxy"}, nil); code != 200 {
			t.Fatalf("PUT proxy: %d", code)
		}
		if ok, out := direct(p.ID, edgeOnGateway, previewHost(p.ID)); ok {
			t.Fatalf("back in proxy: the edge answered: %q", out)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct{ body, want string }{
			{`{"egress":"proxy","allow":[""]}`, "allow[0] is empty"},
			{`{"egress":"proxy","allow":["*"]}`, "would allow every host"},
			{`{"egress":"proxy","allow":["*."]}`, "needs a domain after the *."},
			{`{"egress":"proxy","allow":["10.0.0.0/33"]}`, "is not a valid CIDR"},
			{`{"egress":"proxy","allow":["https://registry.npmjs.org/"]}`, "is a URL: give the host only, like registry.npmjs.org"},
			{`{"egress":"sometimes"}`, `egress "sometimes" is not a mode`},
			{`{}`, "give egress"},
		} {
			var e struct{ Error struct{ Message string } }
			if code := call(t, "PUT", d.API+"/v1/sandboxes/"+p.ID+"/network", tc.body, &e); code != 400 || !strings.Contains(e.Error.Message, tc.want) {
				t.Errorf("PUT %s: %d %q, want 400 saying %q", tc.body, code, e.Error.Message, tc.want)
			}
		}
		var view struct {
			Network struct {
				Egress string
				Allow  []string
			}
		}
		getSandboxInto(t, d, p.ID, &view)
		if view.Network.Egress != "proxy" || strings.Join(view.Network.Allow, ",") != "allowed.test,other.test" {
			t.Fatalf("bad input changed the policy: %+v", view.Network)
		}
		var e struct{ Error struct{ Message string } }
		if code := call(t, "POST", d.API+"/v1/sandboxes", `{"network":{"egress":"proxy","allow":["a.test:443"]}}`, &e); code != 400 ||
			!strings.Contains(e.Error.Message, "network.allow[0]") {
			t.Fatalf("create with a bad entry: %d %q", code, e.Error.Message)
		}
	})
}

func getSandboxInto(t *testing.T, d *daemon, id string, out any) {
	t.Helper()
	if code := call(t, "GET", d.API+"/v1/sandboxes/"+id, nil, out); code != 200 {
		t.Fatalf("GET %s: %d", id, code)
	}
}

// egressWorld is the test's internet: devserver in a container on a network of its own
// (HTTP on 8080; HTTPS on 8443 with a certificate for the test's names, which is its own
// CA), and a DNS server on loopback, for the egress proxy, that names it: allowed.test and
// other.test are the container, loop.test is 127.0.0.1.
type egressWorld struct {
	ip    netip.Addr // the container's
	other netip.Addr // an address of its network that nothing holds
	cert  []byte     // PEM
	dns   string     // host:port
}

func newEgressWorld(t *testing.T, docker *client.Client) *egressWorld {
	t.Helper()
	w := &egressWorld{}
	dir := t.TempDir()
	var key []byte
	w.cert, key = tlstest.SelfSigned(t, "allowed.test", "other.test")
	os.WriteFile(filepath.Join(dir, "cert.pem"), w.cert, 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), key, 0o644)

	netName := dockertest.Network(t, docker)
	gw := makeNetwork(t, docker, netName, false)
	ctx := context.Background()
	c, err := docker.ContainerCreate(ctx, &container.Config{
		Image: dockertest.Testkit,
		Cmd:   []string{"sh", "-c", "PORT=8080 /test/devserver & TLS_CERT=/certs/cert.pem TLS_KEY=/certs/key.pem PORT=8443 exec /test/devserver"},
	}, &container.HostConfig{NetworkMode: container.NetworkMode(netName),
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: dir, Target: "/certs", ReadOnly: true},
			// Built from this tree: the shared image's may predate TLS.
			{Type: mount.TypeBind, Source: dockertest.Binary(t, "./images/testkit/devserver"), Target: "/test/devserver", ReadOnly: true},
		}}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}) })
	if err := docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := docker.ContainerInspect(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.ip = netip.MustParseAddr(info.NetworkSettings.Networks[netName].IPAddress)
	w.other = gw.Next().Next().Next().Next().Next().Next().Next().Next() // .9: nobody's
	for _, port := range []string{"8080", "8443"} {
		testutil.Eventually(t, 30*time.Second, "the test registry on "+port, func() bool {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(w.ip.String(), port), time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}

	ip := w.ip
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(rw dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		answers := map[string]netip.Addr{"allowed.test.": ip, "other.test.": ip, "loop.test.": netip.MustParseAddr("127.0.0.1")}
		q := r.Question[0]
		a, ok := answers[strings.ToLower(q.Name)]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: a.AsSlice()})
		}
		rw.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	w.dns = pc.LocalAddr().String()
	return w
}

// makeNetwork makes a bridge network with inter-container traffic off, as sandboxd would
// (dockertest.Network's cleanup removes it), and returns its gateway.
func makeNetwork(t *testing.T, docker *client.Client, name string, internal bool) netip.Addr {
	t.Helper()
	ctx := context.Background()
	if _, err := docker.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Internal: internal,
		Options: map[string]string{"com.docker.network.bridge.enable_icc": "false"}}); err != nil {
		t.Fatal(err)
	}
	n, err := docker.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil || len(n.IPAM.Config) == 0 {
		t.Fatalf("inspect network %s: %v", name, err)
	}
	return netip.MustParseAddr(n.IPAM.Config[0].Gateway)
}

// listenOn serves reply over HTTP on an address of this host, and returns its URL.
func listenOn(t *testing.T, addr netip.Addr, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, reply) }),
		ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}
