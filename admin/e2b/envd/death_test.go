package envd

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/filesystem"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/process"
	"github.com/sandboxd/sandboxd/internal/testutil"
)

// killBefore makes the next exec or terminal whose command line contains word find the
// sandbox's container dead: the engine kills it between envd's wake and the exec (a kill 1
// inside, an OOM kill), before the manager hears of it (this harness follows no engine
// events). It reports how many it killed.
func (h *harness) killBefore(t *testing.T, word string) *int {
	t.Helper()
	killed := new(int)
	f := func(cmd []string) bool {
		if !strings.Contains(strings.Join(cmd, " "), word) {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sb, err := h.mgr.Get(ctx, h.id)
		if err != nil {
			t.Error(err)
			return true
		}
		if err := h.box.docker.ContainerKill(ctx, sb.ContainerID, "KILL"); err != nil {
			t.Error(err)
			return true
		}
		testutil.Eventually(t, 30*time.Second, "the engine reports the container dead", func() bool {
			c, err := h.box.docker.ContainerInspect(ctx, sb.ContainerID)
			return err == nil && !c.State.Running
		})
		*killed++
		return true
	}
	h.box.before.Store(&f)
	t.Cleanup(func() { h.box.before.Store(nil) })
	return killed
}

// A process, a terminal or a watch that finds the container died since envd woke it is
// not told the death: the sandbox is woken again and the call made once more, as admin's
// exec and envd's file calls do (issue 11).
func testStartAfterDeath(t *testing.T, h *harness) {
	ctx := within(t, 2*time.Minute)
	pc := h.process(true)

	killed := h.killBefore(t, "echo after-death")
	stream, err := pc.Start(ctx, connect.NewRequest(bashStart("echo after-death")))
	if err != nil {
		t.Fatal(err)
	}
	out, end := drain(t, stream)
	if *killed != 1 || !strings.Contains(out, "after-death") || end.GetExitCode() != 0 || end.GetError() != "" {
		t.Fatalf("process after %d kills: output %q, end %v", *killed, out, end)
	}

	killed = h.killBefore(t, "exit 5")
	stream, err = pc.Start(ctx, connect.NewRequest(&process.StartRequest{
		Process: &process.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-c", "exit 5"}},
		Pty:     &process.PTY{Size: &process.PTY_Size{Cols: 80, Rows: 24}}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, end := drain(t, stream); *killed != 1 || end.GetExitCode() != 5 {
		t.Fatalf("terminal after %d kills: end %v", *killed, end)
	}

	killed = h.killBefore(t, "watch")
	watch, err := h.filesystem(true).WatchDir(ctx, connect.NewRequest(&filesystem.WatchDirRequest{Path: "/tmp"}))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	if !watch.Receive() || watch.Msg().GetStart() == nil || *killed != 1 {
		t.Fatalf("watch after %d kills: first event %v (%v)", *killed, watch.Msg(), watch.Err())
	}
}

// drain reads a process stream to its end and returns its output and end event.
func drain(t *testing.T, stream *connect.ServerStreamForClient[process.StartResponse]) (string, *process.ProcessEvent_EndEvent) {
	t.Helper()
	defer stream.Close()
	var out strings.Builder
	var end *process.ProcessEvent_EndEvent
	for stream.Receive() {
		ev := stream.Msg().GetEvent()
		out.Write(ev.GetData().GetStdout())
		out.Write(ev.GetData().GetPty())
		if e := ev.GetEnd(); e != nil {
			end = e
		}
	}
	if end == nil {
		t.Fatalf("no end event (%v); output %q", stream.Err(), out.String())
	}
	return out.String(), end
}
