package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
	"github.com/sandboxd/sandboxd/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dockertest.RemoveBuilt()
	if scanCleanup != nil {
		scanCleanup()
	}
	os.Exit(code)
}

// scanCleanup removes the scan benchmark's trees, made once per process.
var scanCleanup func()

type harness struct {
	m      *Manager
	db     *store.DB
	docker *client.Client
	data   string
	cfg    Config
}

// newHarness is a Manager on the real engine with a fresh data dir and network; every
// container it makes is removed at cleanup, even when the test fails.
func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessAt(t, t.TempDir(), nil)
}

// newHarnessAt is newHarness on the data dir data (a loop-mounted btrfs, say), with the
// configuration edited by edit when it is not nil.
func newHarnessAt(t testing.TB, data string, edit func(*Config)) *harness {
	t.Helper()
	docker := dockertest.Client(t)
	db, err := store.Open(context.Background(), filepath.Join(data, "sandboxd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := DefaultConfig(data)
	cfg.Network = dockertest.Network(t, docker)
	cfg.Image = dockertest.Testkit
	cfg.InitPath = dockertest.Binary(t, "./cmd/sandbox-init")
	cfg.StopTimeout = 3 * time.Second
	cfg.NoFile = 4096
	if edit != nil {
		edit(&cfg)
	}
	m := New(db, docker, cfg, nil)
	dockertest.CleanupInstance(t, docker, m.Instance())
	if err := m.Boot(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &harness{m: m, db: db, docker: docker, data: data, cfg: cfg}
}

func (h *harness) create(t *testing.T, req CreateRequest) store.Sandbox {
	t.Helper()
	sb, err := h.m.Create(context.Background(), req)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return sb
}

func (h *harness) exec(t *testing.T, id string, cmd ...string) ExecResult {
	t.Helper()
	res, err := h.m.Exec(context.Background(), id, ExecRequest{Cmd: cmd})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	return res
}

func (h *harness) containerState(t *testing.T, id string) string {
	t.Helper()
	byID, err := h.m.listContainers(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(byID[id]) == 0 {
		return "absent"
	}
	return byID[id][0].State
}

func TestCreateExecStopStartDeletePurge(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	sb := h.create(t, CreateRequest{ID: "life1", Ports: []int{3000}, Env: map[string]string{"GREETING": "hi there"}})
	if sb.Status != store.StatusRunning || sb.IP == "" {
		t.Fatalf("after create: %+v", sb)
	}
	res := h.exec(t, "life1", "sh", "-c", `echo "$GREETING"; id -u; pwd; echo oops >&2; exit 3`)
	if sb.UID != h.cfg.UIDFirst {
		t.Fatalf("uid %d, want the first of the range", sb.UID)
	}
	if string(res.Stdout) != fmt.Sprintf("hi there\n%d\n/home/sandbox\n", sb.UID) || string(res.Stderr) != "oops\n" || res.ExitCode != 3 {
		t.Fatalf("exec = %+v stdout=%q stderr=%q", res, res.Stdout, res.Stderr)
	}
	h.exec(t, "life1", "sh", "-c", "echo kept > workspace/app/note.txt")

	if err := h.m.Stop(ctx, "life1"); err != nil {
		t.Fatal(err)
	}
	if st := h.containerState(t, "life1"); st != "exited" {
		t.Fatalf("container after stop: %s", st)
	}
	if _, err := h.m.Exec(ctx, "life1", ExecRequest{Cmd: []string{"true"}}); ErrorCode(err) != CodeConflict {
		t.Fatalf("exec on a stopped sandbox: %v, want conflict (never a made-up exit code)", err)
	}
	if _, err := h.m.Start(ctx, "life1"); err != nil {
		t.Fatal(err)
	}
	if out := h.exec(t, "life1", "cat", "workspace/app/note.txt"); string(out.Stdout) != "kept\n" {
		t.Fatalf("workspace after restart: %q", out.Stdout)
	}

	if err := h.m.Delete(ctx, "life1"); err != nil {
		t.Fatal(err)
	}
	if st := h.containerState(t, "life1"); st != "absent" {
		t.Fatalf("container after delete: %s", st)
	}
	if _, err := h.m.Get(ctx, "life1"); ErrorCode(err) != CodeNotFound {
		t.Fatalf("get after delete: %v", err)
	}
	note := filepath.Join(h.data, "workspaces", "life1", "workspace", "app", "note.txt")
	if b, err := os.ReadFile(note); err != nil || string(b) != "kept\n" {
		t.Fatalf("delete must keep the workspace: %q %v", b, err)
	}
	if err := h.m.Purge(ctx, "life1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.data, "workspaces", "life1")); !os.IsNotExist(err) {
		t.Fatalf("purge must remove the workspace: %v", err)
	}
	if err := h.m.Purge(ctx, "life1"); ErrorCode(err) != CodeNotFound {
		t.Fatalf("second purge: %v, want not found", err)
	}
}

func TestContainerIsHardened(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	sb := h.create(t, CreateRequest{ID: "hard", Ports: []int{3000}})
	info, err := h.docker.ContainerInspect(context.Background(), sb.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	hc := info.HostConfig
	checks := []struct {
		name string
		ok   bool
		got  any
	}{
		{"its own uid", info.Config.User == fmt.Sprintf("%d:%d", sb.UID, sb.UID) && sb.UID >= h.cfg.UIDFirst, info.Config.User},
		{"cap drop ALL", len(hc.CapDrop) == 1 && hc.CapDrop[0] == "ALL", hc.CapDrop},
		{"no cap add", len(hc.CapAdd) == 0, hc.CapAdd},
		{"no-new-privileges", len(hc.SecurityOpt) == 1 && hc.SecurityOpt[0] == "no-new-privileges", hc.SecurityOpt},
		{"read-only rootfs", hc.ReadonlyRootfs, hc.ReadonlyRootfs},
		{"tmpfs /tmp", hc.Tmpfs["/tmp"] != "", hc.Tmpfs},
		{"memory 4GiB", hc.Memory == 4<<30, hc.Memory},
		{"no swap", hc.MemorySwap == hc.Memory, hc.MemorySwap},
		{"2 cpus", hc.NanoCPUs == 2e9, hc.NanoCPUs},
		{"pids 1024", hc.PidsLimit != nil && *hc.PidsLimit == 1024, hc.PidsLimit},
		{"nofile", len(hc.Ulimits) == 1 && hc.Ulimits[0].Name == "nofile" && hc.Ulimits[0].Hard == h.cfg.NoFile, hc.Ulimits},
		{"not privileged", !hc.Privileged, hc.Privileged},
		{"network", string(hc.NetworkMode) == h.cfg.Network, hc.NetworkMode},
		{"sandbox-init is PID 1", len(info.Config.Entrypoint) > 0 && info.Config.Entrypoint[0] == initproto.InitPath, info.Config.Entrypoint},
		{"labels", info.Config.Labels[LabelManaged] == "true" && info.Config.Labels[LabelID] == "hard", info.Config.Labels},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %v", c.name, c.got)
		}
	}
	var homeMount, dockerSock bool
	for _, mt := range info.Mounts {
		if mt.Destination == Home && mt.Source == filepath.Join(h.data, "workspaces", "hard") && mt.RW {
			homeMount = true
		}
		if filepath.Base(mt.Source) == "docker.sock" {
			dockerSock = true
		}
	}
	if !homeMount || dockerSock {
		t.Errorf("mounts: workspace at home %v, docker socket %v: %+v", homeMount, dockerSock, info.Mounts)
	}
	if dockertest.NetworkICC(t, h.docker, h.cfg.Network) {
		t.Errorf("network %s lets sandboxes reach each other", h.cfg.Network)
	}
	st, err := os.Stat(filepath.Join(h.data, "workspaces", "hard", "workspace", "app"))
	if err != nil || !st.IsDir() {
		t.Fatalf("workspace/app: %v", err)
	}
	if res := h.exec(t, "hard", "sh", "-c", "stat -c %u:%g workspace/app; touch /etc/x 2>&1; cat /proc/self/status | grep CapEff"); !bytesContain(res.Stdout, fmt.Sprintf("%d:%d", sb.UID, sb.UID), "Read-only file system", "CapEff:\t0000000000000000") {
		t.Errorf("inside the sandbox: %s", res.Stdout)
	}
}

func TestConcurrentCreatesAreDistinct(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const n = 20
	var wg sync.WaitGroup
	ids := make([]string, n)
	ips := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sb, err := h.m.Create(context.Background(), CreateRequest{Ports: []int{3000}})
			ids[i], ips[i], errs[i] = sb.ID, sb.IP, err
		}()
	}
	wg.Wait()
	seenID, seenIP := map[string]bool{}, map[string]bool{}
	for i := range ids {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		if seenID[ids[i]] || seenIP[ips[i]] {
			t.Fatalf("duplicate id or ip: %s %s", ids[i], ips[i])
		}
		seenID[ids[i]], seenIP[ips[i]] = true, true
	}
	list, err := h.m.List(context.Background(), store.ListOptions{Status: store.StatusRunning})
	if err != nil || len(list) != n {
		t.Fatalf("running sandboxes = %d, %v", len(list), err)
	}
}

func TestBadCreateChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cases := []struct {
		name string
		req  CreateRequest
		code Code
	}{
		{"missing image", CreateRequest{ID: "bad1", Image: "sandboxd/nope:latest"}, CodeInvalid},
		{"upper-case id", CreateRequest{ID: "Bad"}, CodeInvalid},
		{"traversal id", CreateRequest{ID: "../x"}, CodeInvalid},
		{"long id", CreateRequest{ID: "a123456789012345678901234567890123456789x"}, CodeInvalid},
		{"port 0", CreateRequest{ID: "bad2", Ports: []int{0}}, CodeInvalid},
		{"port 70000", CreateRequest{ID: "bad3", Ports: []int{70000}}, CodeInvalid},
		{"relay port", CreateRequest{ID: "bad4", Ports: []int{initproto.RelayPort}}, CodeInvalid},
		{"duplicate port", CreateRequest{ID: "bad5", Ports: []int{3000, 3000}}, CodeInvalid},
		{"env name", CreateRequest{ID: "bad6", Env: map[string]string{"A=B": "x"}}, CodeInvalid},
		{"memory", CreateRequest{ID: "bad7", MemoryBytes: 1}, CodeInvalid},
		{"policy", CreateRequest{ID: "bad8", IdlePolicy: "forever"}, CodeInvalid},
		{"service without cmd", CreateRequest{ID: "bad9", Services: []store.Service{{Name: "web"}}}, CodeInvalid},
		{"wake_on", CreateRequest{ID: "bad10", WakeOn: "always"}, CodeInvalid},
		{"stop_after", CreateRequest{ID: "bad11", StopAfter: -time.Second}, CodeInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.m.Create(context.Background(), c.req)
			if ErrorCode(err) != c.code {
				t.Fatalf("err = %v, want code %s", err, c.code)
			}
		})
	}
	h.create(t, CreateRequest{ID: "dup"})
	if _, err := h.m.Create(context.Background(), CreateRequest{ID: "dup"}); ErrorCode(err) != CodeConflict {
		t.Fatalf("duplicate id: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(h.data, "workspaces"))
	if len(entries) != 1 || entries[0].Name() != "dup" {
		t.Fatalf("workspaces after bad creates: %v", entries)
	}
	byID, _ := h.m.listContainers(context.Background(), "")
	if len(byID) != 1 || len(byID["dup"]) != 1 {
		t.Fatalf("containers after bad creates: %v", byID)
	}
	list, _ := h.m.List(context.Background(), store.ListOptions{})
	if len(list) != 1 {
		t.Fatalf("rows after bad creates: %d", len(list))
	}
}

func TestExecTimeoutAndCancelKill(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "killme"})
	ctx := context.Background()
	// The child sleep must die too: the whole process group is killed.
	res, err := h.m.Exec(ctx, "killme", ExecRequest{Cmd: []string{"sh", "-c", "sleep 300 & echo started; wait"}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || string(res.Stdout) != "started\n" {
		t.Fatalf("timeout: %+v %q", res.ExecStatus, res.Stdout)
	}
	waitNoProcess(t, h, "killme", "sleep 300")

	cctx, cancel := context.WithCancel(ctx)
	out := &signalWriter{seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := h.m.ExecStream(cctx, "killme", ExecRequest{Cmd: []string{"sh", "-c", "echo go; sleep 301"}}, out, out)
		done <- err
	}()
	select {
	case <-out.seen: // the command runs
	case err := <-done: // never wrote: fail rather than wait forever
		cancel()
		t.Fatalf("exec ended before its first write: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled exec: %v", err)
	}
	waitNoProcess(t, h, "killme", "sleep 301")
}

type signalWriter struct {
	once sync.Once
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.seen) })
	return len(p), nil
}

func waitNoProcess(t *testing.T, h *harness, id, pattern string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := h.exec(t, id, "sh", "-c", "ps -o args | grep -v grep | grep -c '"+pattern+"' || true")
		if string(res.Stdout) == "0\n" {
			return
		}
		if time.Now().After(deadline) {
			ps := h.exec(t, id, "ps", "-o", "pid,ppid,pgid,stat,args")
			t.Fatalf("process %q still runs in %s:\n%s", pattern, id, ps.Stdout)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline, not ordering
	}
}

func bytesContain(b []byte, subs ...string) bool {
	for _, s := range subs {
		if !strings.Contains(string(b), s) {
			return false
		}
	}
	return true
}
