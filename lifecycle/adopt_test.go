package lifecycle

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// loseDatabase replaces h's database with an empty one and its Manager with a fresh one
// over it, as a restart after the database file was lost.
func (h *harness) loseDatabase(t *testing.T, adopt bool) {
	t.Helper()
	h.db.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(h.data, "sandboxd.db"+suffix))
	}
	db, err := store.Open(context.Background(), filepath.Join(h.data, "sandboxd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.db = db
	h.m = New(db, h.docker, h.cfg, nil)
	h.m.AdoptOrphans = adopt
}

// With the database lost, Boot with AdoptOrphans rebuilds every sandbox from its saved
// config and its container: same id, image, ports, services, env (values too), labels and
// limits, the container kept as it runs. Without a saved config, what the container holds
// comes back.
func TestAdoptAfterLostDatabase(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	want := h.create(t, CreateRequest{
		ID: "full", Ports: []int{3000, 8080}, Env: map[string]string{"API_KEY": "s3cret\nline2"},
		Labels:      map[string]string{"team": "web"},
		Services:    []store.Service{{Name: "api", Cmd: []string{"devserver"}, Env: map[string]string{"PORT": "4000"}, Port: 4000}},
		MemoryBytes: 256 << 20, IdlePolicy: store.IdleAlwaysOn,
	})
	bare := h.create(t, CreateRequest{ID: "bare", Env: map[string]string{"A": "1"},
		Services: []store.Service{{Name: "web", Cmd: []string{"devserver"}, Port: 3000}}})
	os.Remove(h.m.configPath("bare")) // made before configs existed
	h.create(t, CreateRequest{ID: "stopped"})
	if err := h.m.Stop(ctx, "stopped"); err != nil {
		t.Fatal(err)
	}

	h.loseDatabase(t, true)
	if err := h.m.Boot(ctx); err != nil {
		t.Fatalf("boot with adopt: %v", err)
	}
	got, err := h.m.Get(ctx, "full")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.StatusRunning || got.ContainerID != want.ContainerID || got.IP != want.IP ||
		!reflect.DeepEqual(got.Ports, want.Ports) || !reflect.DeepEqual(got.Labels, want.Labels) ||
		!reflect.DeepEqual(got.Services, want.Services) || !reflect.DeepEqual(got.EnvKeys, want.EnvKeys) ||
		got.MemoryBytes != want.MemoryBytes || got.IdlePolicy != want.IdlePolicy || want.CreatedAt.Sub(got.CreatedAt).Abs() >= time.Millisecond {
		t.Fatalf("adopted:\n got %+v\nwant %+v", got, want)
	}
	if env, _ := h.db.SandboxEnv(ctx, "full"); env["API_KEY"] != "s3cret\nline2" {
		t.Fatalf("env after adopt: %q", env)
	}
	if res := h.exec(t, "full", "sh", "-c", `printf %s "$API_KEY"`); string(res.Stdout) != "s3cret\nline2" {
		t.Fatalf("the adopted container's env: %q", res.Stdout)
	}

	got, err = h.m.Get(ctx, "bare")
	if err != nil || got.ContainerID != bare.ContainerID || got.Status != store.StatusRunning ||
		!reflect.DeepEqual(got.EnvKeys, []string{"A"}) || !reflect.DeepEqual(got.Ports, []int{3000}) || len(got.Services) != 1 {
		t.Fatalf("adopted from its container: %+v %v", got, err)
	}
	if _, err := os.Stat(h.m.configPath("bare")); err != nil {
		t.Fatalf("the adopted sandbox got no config: %v", err)
	}
	if got, err := h.m.Get(ctx, "stopped"); err != nil || got.Status != store.StatusStopped {
		t.Fatalf("the stopped sandbox: %+v %v", got, err)
	}
	if _, err := h.m.Start(ctx, "stopped"); err != nil {
		t.Fatalf("start the adopted stopped sandbox: %v", err)
	}
}

// A config file holds env values: only the operator may read it.
func TestConfigFileIsPrivate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "priv", Env: map[string]string{"TOKEN": "x"}})
	for path, want := range map[string]os.FileMode{h.m.configDir(): 0o700, h.m.configPath("priv"): 0o600} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != want {
			t.Fatalf("%s: %v %v, want %v", path, st.Mode().Perm(), err, want)
		}
	}
	if err := h.m.Delete(context.Background(), "priv"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.m.configPath("priv")); !os.IsNotExist(err) {
		t.Fatalf("config after delete: %v", err)
	}
}

// Every boot, --adopt or not, adopts a container whose saved config has no row: only a
// restored backup makes one. A container with neither row nor config is an orphan and goes.
func TestBootAdoptsContainersWithAConfig(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	kept := h.create(t, CreateRequest{ID: "kept", Labels: map[string]string{"a": "b"}})
	h.create(t, CreateRequest{ID: "orphan"})
	os.Remove(h.m.configPath("orphan"))

	h.loseDatabase(t, false)
	if err := h.m.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := h.m.Get(ctx, "kept")
	if err != nil || got.ContainerID != kept.ContainerID || got.Status != store.StatusRunning || got.Labels["a"] != "b" {
		t.Fatalf("kept: %+v %v", got, err)
	}
	if _, err := h.m.Get(ctx, "orphan"); ErrorCode(err) != CodeNotFound {
		t.Fatalf("orphan: %v", err)
	}
	if st := h.containerState(t, "orphan"); st != "absent" {
		t.Fatalf("the orphan's container is %s, want removed", st)
	}
}

// What decides who may reach a sandbox survives in its config: an adopted sandbox keeps
// its tenant and its preview access (a private preview must not come back public), its
// quota and uid, its wake policy and stop_after (issue 14); env and service env values are
// sealed in it, never in clear.
func TestConfigKeepsTenantAndPreviews(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(data, "sandboxd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := New(db, nil, DefaultConfig(data), nil)
	sb := store.Sandbox{ID: "acme--app", Image: "img", Tenant: "acme", DiskBytes: 1 << 30, UID: 200007,
		Previews: store.Previews{Access: store.AccessPrivate, Ports: map[int]string{3000: store.AccessPublic}},
		Services: []store.Service{{Name: "web", Cmd: []string{"devserver"}, Env: map[string]string{"DB_PASSWORD": "hunter2-secret"}}},
		WakeOn:   store.WakeOnAny, StopAfter: 5 * time.Minute}
	if err := m.writeConfig(sb, map[string]string{"K": "value-in-the-clear?"}); err != nil {
		t.Fatal(err)
	}
	got, env, err := m.readConfig("acme--app")
	if err != nil || got.Tenant != "acme" || !reflect.DeepEqual(got.Previews, sb.Previews) || env["K"] != "value-in-the-clear?" ||
		got.DiskBytes != sb.DiskBytes || got.UID != sb.UID || !reflect.DeepEqual(got.Services, sb.Services) ||
		got.WakeOn != store.WakeOnAny || got.StopAfter != 5*time.Minute {
		t.Fatalf("read back %+v %v %v", got, env, err)
	}
	raw, err := os.ReadFile(m.configPath("acme--app"))
	if err != nil || bytes.Contains(raw, []byte("value-in-the-clear?")) || bytes.Contains(raw, []byte("hunter2-secret")) {
		t.Fatalf("the config file holds a value in clear (%v):\n%s", err, raw)
	}
}
