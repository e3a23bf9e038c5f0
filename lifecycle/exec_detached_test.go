package lifecycle

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// waitDetachedStatus polls DetachedStatus until it reports want or the deadline passes.
func waitDetachedStatus(t *testing.T, h *harness, id, execID, want string, within time.Duration) DetachedExec {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := h.m.DetachedStatus(context.Background(), id, execID)
		if err != nil {
			t.Fatalf("status of %s: %v", execID, err)
		}
		if d.Status == want {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec %s is %s after %s, want %s", execID, d.Status, within, want)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline, not ordering
	}
}

func inflight(h *harness, id string) int32 {
	h.m.mu.RLock()
	defer h.m.mu.RUnlock()
	return h.m.sandboxes[id].inflight.Load()
}

func TestDetachedExec(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "det"})
	ctx := context.Background()
	gate := filepath.Join(h.data, "workspaces", "det", "go")
	// The command waits for the gate file, so "running" is seen for certain.
	cmd := []string{"sh", "-c", `echo one; while [ ! -e "$HOME/go" ]; do sleep 0.05; done; echo two; exit 7`}
	d, err := h.m.ExecDetached(ctx, "det", ExecRequest{Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	if !ulidPattern.MatchString(d.ID) || d.Status != DetachedRunning || !slices.Equal(d.Cmd, cmd) {
		t.Fatalf("started: %+v", d)
	}
	st := waitDetachedStatus(t, h, "det", d.ID, DetachedRunning, time.Second)
	if st.ExitCode != nil || !st.StartedAt.Equal(d.StartedAt) {
		t.Fatalf("running: %+v", st)
	}

	// Work in flight: an idle sweep far in the future leaves the sandbox alone.
	if sw := h.m.IdleSweep(ctx, time.Now().Add(24*time.Hour)); len(sw.Paused)+len(sw.Stopped) != 0 {
		t.Fatalf("idle sweep put %+v to sleep while a detached exec runs", sw)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st = waitDetachedStatus(t, h, "det", d.ID, DetachedExited, 10*time.Second)
	if st.ExitCode == nil || *st.ExitCode != 7 || st.TimedOut || !slices.Equal(st.Cmd, cmd) {
		t.Fatalf("exited: %+v", st)
	}
	rc, mod, err := h.m.DetachedOutput(ctx, "det", d.ID)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	if string(out) != "one\ntwo\n" || mod.IsZero() {
		t.Fatalf("output %q modtime %v", out, mod)
	}

	// Once it ended, the watcher releases the sandbox and the reaper may stop it.
	h.m.waitDetached()
	if n := inflight(h, "det"); n != 0 {
		t.Fatalf("in flight after the exec ended: %d", n)
	}
	if sw := h.m.IdleSweep(ctx, time.Now().Add(24*time.Hour)); !slices.Equal(sw.Paused, []string{"det"}) {
		t.Fatalf("idle sweep after the exec: %+v", sw)
	}
	// Status and output stay readable while the sandbox sleeps: they are in the workspace.
	st, err = h.m.DetachedStatus(ctx, "det", d.ID)
	if err != nil || st.Status != DetachedExited || *st.ExitCode != 7 {
		t.Fatalf("status while paused: %+v %v", st, err)
	}
}

func TestDetachedExecTimeoutAndStop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "dett"})
	ctx := context.Background()
	d, err := h.m.ExecDetached(ctx, "dett", ExecRequest{Cmd: []string{"sh", "-c", "sleep 303 & wait"}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := waitDetachedStatus(t, h, "dett", d.ID, DetachedExited, 15*time.Second)
	if !st.TimedOut || st.ExitCode == nil || *st.ExitCode != 128+int(syscall.SIGKILL) {
		t.Fatalf("timed out: %+v (code %v)", st, deref(st.ExitCode))
	}
	waitNoProcess(t, h, "dett", "sleep 303")

	// A detached exec without a timeout ends with its sandbox, and so does its watcher.
	d, err = h.m.ExecDetached(ctx, "dett", ExecRequest{Cmd: []string{"sleep", "304"}})
	if err != nil {
		t.Fatal(err)
	}
	waitDetachedStatus(t, h, "dett", d.ID, DetachedRunning, time.Second)
	if err := h.m.Stop(ctx, "dett"); err != nil {
		t.Fatal(err)
	}
	h.m.waitDetached()
	if n := inflight(h, "dett"); n != 0 {
		t.Fatalf("in flight after the sandbox stopped: %d", n)
	}
	st, err = h.m.DetachedStatus(ctx, "dett", d.ID)
	if err != nil || st.Status != DetachedExited {
		t.Fatalf("status after stop: %+v %v", st, err)
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// The workspace belongs to the sandbox user: what it plants where sandboxd reads exec files
// never reaches outside the workspace, and never hangs a read.
func TestDetachedExecRefusesPlantedFiles(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "plant"})
	ctx := context.Background()
	dir := filepath.Join(h.data, "workspaces", "plant", ".sandboxd", "exec")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const linked, fifo = "01aaaaaaaaaaaaaaaaaaaaaaaa", "01bbbbbbbbbbbbbbbbbbbbbbbb"
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, linked+".log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../etc/hostname", filepath.Join(dir, linked+".log.exit")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, fifo+".log.exit"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fifo+".log"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rc, _, err := h.m.DetachedOutput(ctx, "plant", linked); err == nil {
		b, _ := io.ReadAll(rc)
		rc.Close()
		t.Fatalf("output through a symlink out of the workspace: %q", b)
	}
	if st, err := h.m.DetachedStatus(ctx, "plant", linked); err == nil && st.Status == DetachedExited {
		t.Fatalf("status through a symlink out of the workspace: %+v", st)
	}
	if st, err := h.m.DetachedStatus(ctx, "plant", fifo); err == nil && st.Status == DetachedExited {
		t.Fatalf("status from a FIFO: %+v", st)
	}
	for _, bad := range []string{"../../../etc/passwd", "01AAAAAAAAAAAAAAAAAAAAAAAA", "short", ""} {
		if _, err := h.m.DetachedStatus(ctx, "plant", bad); ErrorCode(err) != CodeNotFound {
			t.Errorf("status of exec id %q: %v, want not found", bad, err)
		}
		if _, _, err := h.m.DetachedOutput(ctx, "plant", bad); ErrorCode(err) != CodeNotFound {
			t.Errorf("output of exec id %q: %v, want not found", bad, err)
		}
	}
	if _, err := h.m.DetachedStatus(ctx, "plant", "01cccccccccccccccccccccccc"); ErrorCode(err) != CodeNotFound {
		t.Errorf("status of an exec that never was: %v", err)
	}
}

func TestDetachedExecNeedsInit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "noinit"})
	h.m.cfg.InitPath = "" // only the detach check reads it from here on
	if _, err := h.m.ExecDetached(context.Background(), "noinit", ExecRequest{Cmd: []string{"true"}}); ErrorCode(err) != CodeInvalid {
		t.Fatalf("detach without sandbox-init: %v, want invalid", err)
	}
}

// A detached exec keeps the first MaxDetachedOutput bytes of its output and a line saying
// the rest was dropped; the command itself runs to its end.
func TestDetachedOutputIsCapped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "loud"})
	ctx := context.Background()
	d, err := h.m.ExecDetached(ctx, "loud", ExecRequest{Cmd: []string{"sh", "-c",
		`echo "var=${SANDBOX_INIT_LOG_MAX:-unset}"; head -c 40000000 /dev/zero; exit 5`}})
	if err != nil {
		t.Fatal(err)
	}
	st := waitDetachedStatus(t, h, "loud", d.ID, DetachedExited, 30*time.Second)
	if st.ExitCode == nil || *st.ExitCode != 5 {
		t.Fatalf("exited: %+v", st)
	}
	rc, _, err := h.m.DetachedOutput(ctx, "loud", d.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out, _ := io.ReadAll(rc)
	if len(out) > MaxDetachedOutput+200 || !bytes.HasPrefix(out, []byte("var=unset\n")) || !bytes.HasSuffix(out, []byte("the rest is not kept]\n")) {
		t.Fatalf("output of %d bytes (cap %d), ending %q", len(out), MaxDetachedOutput, out[max(0, len(out)-60):])
	}
}
