package lifecycle

import (
	"context"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/sandboxd/sandboxd/store"
)

func (h *harness) status(t *testing.T, id string) store.Sandbox {
	t.Helper()
	sb, err := h.m.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func (h *harness) startedAt(t *testing.T, id string) string {
	t.Helper()
	info, err := h.docker.ContainerInspect(context.Background(), h.status(t, id).ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.StartedAt
}

// A paused sandbox keeps its processes and memory: Start unpauses it at the same address,
// without restarting its container, and a process started before the pause is still there
// with what it kept in memory (a tmpfs file; a stop would lose it). Pause and Resume are
// idempotent the way the E2B adapter needs; a stopped sandbox cannot be paused.
func TestPauseKeepsProcessesAndStartUnpauses(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	routes := &routeLog{}
	h.m.Routes = routes
	ctx := context.Background()
	sb := h.create(t, CreateRequest{ID: "warm", Ports: []int{3000}})
	pid := strings.TrimSpace(string(h.exec(t, "warm", "sh", "-c", `echo kept > /tmp/state; sleep 600 >/dev/null 2>&1 & echo $!`).Stdout))
	started := h.startedAt(t, "warm")

	h.pause(t, "warm")
	if got := h.status(t, "warm"); got.Status != store.StatusPaused || got.PausedAt.IsZero() || got.IP != sb.IP {
		t.Fatalf("after pause: status %s, paused at %v, ip %s", got.Status, got.PausedAt, got.IP)
	}
	if st := h.containerState(t, "warm"); st != "paused" {
		t.Fatalf("container after pause: %s", st)
	}
	if _, running := h.m.Running("warm"); running || !h.m.Paused("warm") || routes.get("warm").Status != store.StatusPaused {
		t.Fatalf("memory after pause: running %v, paused %v, route %q", running, h.m.Paused("warm"), routes.get("warm").Status)
	}
	if _, err := h.m.Exec(ctx, "warm", ExecRequest{Cmd: []string{"true"}}); ErrorCode(err) != CodeConflict {
		t.Fatalf("exec in a paused sandbox: %v, want conflict (callers wake it first)", err)
	}
	h.pause(t, "warm") // pausing a paused sandbox changes nothing

	ip, err := h.m.Start(ctx, "warm")
	if err != nil || ip.String() != sb.IP {
		t.Fatalf("start of a paused sandbox: %v %v, want %s", ip, err, sb.IP)
	}
	if got := h.status(t, "warm"); got.Status != store.StatusRunning || !got.PausedAt.IsZero() {
		t.Fatalf("after the unpause: %s paused at %v", got.Status, got.PausedAt)
	}
	if h.startedAt(t, "warm") != started || routes.get("warm").Status != store.StatusRunning {
		t.Fatalf("the unpause restarted the container or left the route behind (%s)", routes.get("warm").Status)
	}
	if out := h.exec(t, "warm", "sh", "-c", "kill -0 "+pid+" && cat /tmp/state"); string(out.Stdout) != "kept\n" {
		t.Fatalf("after the unpause, process %s and /tmp: %+v %q", pid, out, out.Stdout)
	}

	if resumed, err := h.m.Resume(ctx, "warm"); err != nil || resumed {
		t.Fatalf("resume of a running sandbox: %v %v, want false", resumed, err)
	}
	h.pause(t, "warm")
	if resumed, err := h.m.Resume(ctx, "warm"); err != nil || !resumed || h.status(t, "warm").Status != store.StatusRunning {
		t.Fatalf("resume of a paused sandbox: %v %v", resumed, err)
	}

	h.pause(t, "warm")
	if err := h.m.Stop(ctx, "warm"); err != nil {
		t.Fatalf("stop of a paused sandbox: %v", err)
	}
	if st := h.containerState(t, "warm"); st != "exited" || h.status(t, "warm").Status != store.StatusStopped {
		t.Fatalf("after stopping a paused sandbox: container %s, status %s", st, h.status(t, "warm").Status)
	}
	if err := h.m.Pause(ctx, "warm"); ErrorCode(err) != CodeConflict || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("pause of a stopped sandbox: %v, want a conflict naming its state", err)
	}
	if resumed, err := h.m.Resume(ctx, "warm"); err != nil || !resumed {
		t.Fatalf("resume of a stopped sandbox: %v %v", resumed, err)
	}
	h.pause(t, "warm")
	if err := h.m.Delete(ctx, "warm"); err != nil {
		t.Fatalf("delete of a paused sandbox: %v", err)
	}
	if st := h.containerState(t, "warm"); st != "absent" {
		t.Fatalf("container after deleting a paused sandbox: %s", st)
	}
}

// A container paused, unpaused or stopped behind sandboxd's back: reconcile records what
// the engine says, Start copes with a row that says paused over a container that is not,
// and a new sandboxd (Boot) finds a paused sandbox paused and wakes it by unpausing.
func TestPausedBehindOurBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	sb := h.create(t, CreateRequest{ID: "side", Ports: []int{3000}})
	engine := func(what string, f func(context.Context, string) error) {
		t.Helper()
		if err := f(ctx, sb.ContainerID); err != nil {
			t.Fatalf("%s on the engine: %v", what, err)
		}
	}
	reconcile := func(want string) {
		t.Helper()
		if err := h.m.reconcileID(ctx, "side"); err != nil {
			t.Fatal(err)
		}
		if got := h.status(t, "side"); got.Status != want || (want == store.StatusPaused) == got.PausedAt.IsZero() {
			t.Fatalf("reconciled to %s (paused at %v), want %s", got.Status, got.PausedAt, want)
		}
	}
	engine("pause", h.docker.ContainerPause)
	reconcile(store.StatusPaused)
	engine("unpause", h.docker.ContainerUnpause)
	reconcile(store.StatusRunning)

	// The row says paused, the container runs.
	engine("pause", h.docker.ContainerPause)
	reconcile(store.StatusPaused)
	engine("unpause", h.docker.ContainerUnpause)
	if ip, err := h.m.Start(ctx, "side"); err != nil || ip.String() != sb.IP || h.status(t, "side").Status != store.StatusRunning {
		t.Fatalf("start over a container unpaused behind our back: %v %v", ip, err)
	}
	// The row says paused, the container was stopped.
	h.pause(t, "side")
	engine("stop", func(ctx context.Context, id string) error {
		return h.docker.ContainerStop(ctx, id, container.StopOptions{})
	})
	if _, err := h.m.Start(ctx, "side"); err != nil || h.containerState(t, "side") != "running" {
		t.Fatalf("start over a container stopped behind our back: %v, container %s", err, h.containerState(t, "side"))
	}

	// A new sandboxd over the same store and engine.
	h.pause(t, "side")
	started := h.startedAt(t, "side")
	m2 := New(h.db, h.docker, h.cfg, nil)
	if err := m2.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	if !m2.Paused("side") {
		t.Fatal("after a restart the paused sandbox is not paused")
	}
	if _, err := m2.Start(ctx, "side"); err != nil || h.containerState(t, "side") != "running" || h.startedAt(t, "side") != started {
		t.Fatalf("wake after a restart: %v; container %s, restarted %v", err, h.containerState(t, "side"), h.startedAt(t, "side") != started)
	}
}
