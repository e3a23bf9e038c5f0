package lifecycle

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/netpolicy"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
	"github.com/sandboxd/sandboxd/store"
)

// egressManager is a Manager over h's data dir and network with the internal network of
// issue 15 and an egress proxy address (nothing listens there: lifecycle only names it).
func egressManager(t *testing.T, h *harness) (*Manager, *routeLog) {
	t.Helper()
	cfg := h.cfg
	cfg.InternalNetwork = dockertest.InternalNetwork(cfg.Network)
	m := New(h.db, h.docker, cfg, nil)
	nets, err := m.Networks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m.EgressProxy = netip.AddrPortFrom(nets.Gateway, 3128)
	routes := &routeLog{}
	m.Routes = routes
	if err := m.Boot(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m, routes
}

func (h *harness) networksOf(t *testing.T, id string) []string {
	t.Helper()
	byID, err := h.m.listContainers(context.Background(), id)
	if err != nil || len(byID[id]) != 1 {
		t.Fatalf("containers of %s: %v, %v", id, byID[id], err)
	}
	var names []string
	for n := range listedNetworks(&byID[id][0]) {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// A sandbox is always on the internal network, at the address routes use, and on the
// bridge only in mode open; a mode change moves it without a restart and keeps that
// address. A sandbox made before the internal network joins it when sandboxd boots, and
// is made again with the proxy variables at its next start.
func TestNetworkModes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	old := h.create(t, CreateRequest{ID: "old"}) // made by a sandboxd without egress

	m, routes := egressManager(t, h)
	h.m = m
	nets, _ := m.Networks(ctx)
	internalNet, bridge := m.cfg.InternalNetwork, m.cfg.Network
	both, internalOnly := []string{bridge, internalNet}, []string{internalNet}
	slices.Sort(both)

	// Adopted at boot: on both networks, routed at its internal address.
	if got := h.networksOf(t, "old"); !slices.Equal(got, both) {
		t.Fatalf("old sandbox after boot: on %v, want %v", got, both)
	}
	if rt := routes.get("old"); !nets.Internal.Contains(rt.IP) || rt.IP.String() == old.IP || rt.Egress != netpolicy.Open {
		t.Fatalf("old sandbox's route %+v (was %s), want an address in %s", rt, old.IP, nets.Internal)
	}

	sb := h.create(t, CreateRequest{ID: "modes", Egress: netpolicy.Proxy, Allow: []string{"Registry.npmjs.org", "10.0.0.0/8"}})
	if got := h.networksOf(t, "modes"); !slices.Equal(got, internalOnly) {
		t.Fatalf("proxy sandbox on %v", got)
	}
	env := string(h.exec(t, "modes", "env").Stdout)
	proxyURL := "http://" + m.EgressProxy.String()
	for _, v := range []string{"HTTP_PROXY=" + proxyURL, "https_proxy=" + proxyURL, "NO_PROXY=localhost,127.0.0.1,::1"} {
		if !strings.Contains(env, v+"\n") {
			t.Fatalf("env lacks %s:\n%s", v, env)
		}
	}
	if rt := routes.get("modes"); rt.Egress != netpolicy.Proxy || !slices.Equal(rt.Allow, []string{"registry.npmjs.org", "10.0.0.0/8"}) {
		t.Fatalf("route %+v", rt)
	}

	began := time.Now()
	sb2, err := m.SetNetwork(ctx, "modes", netpolicy.Open, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("proxy → open on a running sandbox took %s", time.Since(began)) // a figure, not a test
	if got := h.networksOf(t, "modes"); !slices.Equal(got, both) || sb2.IP != sb.IP {
		t.Fatalf("after open: on %v at %s, want %v at %s", got, sb2.IP, both, sb.IP)
	}
	began = time.Now()
	if _, err := m.SetNetwork(ctx, "modes", netpolicy.None, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("open → none on a running sandbox took %s", time.Since(began))
	if got := h.networksOf(t, "modes"); !slices.Equal(got, internalOnly) {
		t.Fatalf("after none: on %v", got)
	}
	if rt := routes.get("modes"); rt.Egress != netpolicy.None || rt.IP.String() != sb.IP {
		t.Fatalf("route after none: %+v", rt)
	}

	// Stopped: the change is recorded, and applied at the next start.
	if err := m.Stop(ctx, "modes"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetNetwork(ctx, "modes", netpolicy.Open, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx, "modes"); err != nil {
		t.Fatal(err)
	}
	if got := h.networksOf(t, "modes"); !slices.Equal(got, both) {
		t.Fatalf("started open: on %v", got)
	}

	// The old sandbox's container lacks the proxy variables: made again at its next start.
	if err := m.Stop(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if env := string(h.exec(t, "old", "env").Stdout); !strings.Contains(env, "HTTPS_PROXY="+proxyURL+"\n") {
		t.Fatalf("old sandbox after restart has no proxy variables:\n%s", env)
	}
	got, _ := m.Get(ctx, "old")
	if got.ContainerID == old.ContainerID {
		t.Fatal("the old container was kept")
	}
}

// A bad policy is refused with a message naming the field, and changes nothing. No engine:
// validation comes before any Docker call.
func TestSetNetworkRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(data, "sandboxd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := DefaultConfig(data)
	cfg.InternalNetwork = "sandboxd-internal"
	m := New(db, nil, cfg, nil)
	sb := store.Sandbox{ID: "bad", Status: store.StatusStopped, Image: "x", IdlePolicy: store.IdleSleep, Egress: netpolicy.Proxy, EgressAllow: []string{"pypi.org"}}
	if err := db.CreateSandbox(ctx, &sb, nil); err != nil {
		t.Fatal(err)
	}
	m.remember(sb)
	for _, tc := range []struct {
		egress string
		allow  []string
		want   string
	}{
		{"", nil, "give egress"},
		{"closed", nil, `egress "closed" is not a mode: use "none", "proxy" or "open"`},
		{"proxy", []string{""}, "allow[0] is empty"},
		{"proxy", []string{"*"}, "would allow every host"},
		{"proxy", []string{"ok.example", "*."}, "allow[1]"},
		{"proxy", []string{"10.0.0.0/33"}, "not a valid CIDR"},
		{"proxy", []string{"https://registry.npmjs.org"}, "is a URL"},
		{"proxy", make([]string, 300), "at most 256"},
		{"proxy", []string{strings.Repeat("a", 254)}, "at most 253"},
	} {
		_, err := m.SetNetwork(ctx, "bad", tc.egress, tc.allow)
		if ErrorCode(err) != CodeInvalid || !strings.Contains(ErrorMessage(err), tc.want) {
			t.Errorf("SetNetwork(%q, %q) = %v, want invalid saying %q", tc.egress, tc.allow, err, tc.want)
		}
	}
	got, err := m.Get(ctx, "bad")
	if err != nil || got.Egress != netpolicy.Proxy || !slices.Equal(got.EgressAllow, []string{"pypi.org"}) {
		t.Fatalf("after refused changes: %q %q, %v", got.Egress, got.EgressAllow, err)
	}
	// What a change leaves out, it keeps: the list when only the mode is given, and the
	// mode when only the list is. (A stopped sandbox: no engine needed.)
	if sb, err := m.SetNetwork(ctx, "bad", netpolicy.None, nil); err != nil || sb.Egress != netpolicy.None || !slices.Equal(sb.EgressAllow, []string{"pypi.org"}) {
		t.Fatalf("mode only: %q %q, %v", sb.Egress, sb.EgressAllow, err)
	}
	if sb, err := m.SetNetwork(ctx, "bad", "", []string{}); err != nil || sb.Egress != netpolicy.None || sb.EgressAllow != nil {
		t.Fatalf("empty list: %q %q, %v", sb.Egress, sb.EgressAllow, err)
	}
	for _, tc := range []struct {
		req  CreateRequest
		want string
	}{
		{CreateRequest{ID: "bad2", Allow: []string{"a.example/x"}}, "network.allow[0]"},
		{CreateRequest{ID: "bad2", Egress: "off"}, "network.egress"},
	} {
		if _, err := m.Create(ctx, tc.req); ErrorCode(err) != CodeInvalid || !strings.Contains(ErrorMessage(err), tc.want) {
			t.Fatalf("create %+v: %v, want invalid naming %s", tc.req, err, tc.want)
		}
	}
	// Without the internal network, only open is possible, and the error says why.
	m2 := New(db, nil, DefaultConfig(data), nil)
	if _, err := m2.SetNetwork(ctx, "bad", netpolicy.None, nil); ErrorCode(err) != CodeInvalid || !strings.Contains(ErrorMessage(err), "internal network") {
		t.Fatalf("none without the internal network: %v", err)
	}
}

// A sandbox adopted after its database was lost keeps its egress policy from its saved
// config; one with no config is open only if its container had the route out, else none;
// and the proxy variables sandboxd put in its container are not taken for its own env.
func TestAdoptionKeepsEgress(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(data, "sandboxd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := DefaultConfig(data)
	cfg.InternalNetwork = "sandboxd-internal"
	m := New(db, nil, cfg, nil)
	sb := store.Sandbox{ID: "kept", Image: "img", Egress: netpolicy.Proxy, EgressAllow: []string{"pypi.org", "10.0.0.0/8"}}
	if err := m.writeConfig(sb, nil); err != nil {
		t.Fatal(err)
	}
	got, _, err := m.readConfig("kept")
	if err != nil || got.Egress != netpolicy.Proxy || !slices.Equal(got.EgressAllow, sb.EgressAllow) {
		t.Fatalf("read back %q %q, %v", got.Egress, got.EgressAllow, err)
	}
	if e := m.egressOfContainer(map[string]bool{"sandboxd-internal": true}); e != netpolicy.None {
		t.Fatalf("a container without the route out adopts as %q", e)
	}
	if e := m.egressOfContainer(map[string]bool{"sandboxd-internal": true, "sandboxd": true}); e != netpolicy.Open {
		t.Fatalf("a container with the route out adopts as %q", e)
	}
	labels := map[string]string{LabelEgressProxy: "http://172.18.0.1:3128"}
	for kv, injected := range map[string]bool{
		"HTTPS_PROXY=http://172.18.0.1:3128": true, "no_proxy=" + noProxy: true,
		"HTTPS_PROXY=http://corp-proxy:8080": false, "NO_PROXY=.corp": false, "PATH=/bin": false,
	} {
		k, v, _ := strings.Cut(kv, "=")
		if injectedProxyVar(labels, k, v) != injected {
			t.Errorf("%s: injected %v", kv, !injected)
		}
	}
}
