package lifecycle

import (
	"context"
	"strings"
	"testing"
	"time"
)

// pumpTerminal copies a terminal's output into a chunkWriter until it ends; ended closes then.
func pumpTerminal(term Terminal) (*chunkWriter, <-chan struct{}) {
	out := newChunkWriter()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		buf := make([]byte, 4096)
		for {
			n, err := term.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return out, ended
}

func TestTerminal(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "term"})
	ctx := context.Background()
	term, err := h.m.Terminal(ctx, "term", TerminalRequest{Cols: 80, Rows: 24, Env: map[string]string{"HELLO": "env-ok"}})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	out, ended := pumpTerminal(term)

	before := time.Now()
	if _, err := term.Write([]byte("echo hello-$((1+2)) $HELLO $TERM; stty size\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "hello-3 env-ok xterm-256color", 30*time.Second)
	out.waitFor(t, "24 80", 10*time.Second)
	// Activity, but not work in flight: a forgotten terminal must not pin the sandbox.
	if h.m.lastActive("term").Before(before.Truncate(time.Second)) || inflight(h, "term") != 0 {
		t.Fatalf("activity: last %v (typed at %v), in flight %d", h.m.lastActive("term"), before, inflight(h, "term"))
	}

	if err := term.Resize(100, 40); err != nil {
		t.Fatal(err)
	}
	term.Write([]byte("stty size; echo $((6*7))-sized\n"))
	out.waitFor(t, "40 100", 10*time.Second)
	out.waitFor(t, "42-sized", 10*time.Second)

	// ctrl-p ctrl-q, Docker's default detach keys, reach the program like any other keys.
	// The bytes are typed only once the tty is raw ("ready"), so no line discipline and no
	// readline stands between them and od.
	term.Write([]byte("stty raw -echo; echo ready; head -c 2 | od -An -tx1; stty sane\n"))
	out.waitFor(t, "ready\n", 10*time.Second)
	term.Write([]byte("\x10\x11"))
	out.waitFor(t, "10 11", 10*time.Second)
	term.Write([]byte("echo still-$((2+2))\n"))
	out.waitFor(t, "still-4", 10*time.Second)

	// The shell runs in its own session with the home as its directory; a background job
	// started in it must end with it.
	term.Write([]byte("sleep 305 & pwd; echo pid-$$\n"))
	out.waitFor(t, "/home/sandbox", 10*time.Second)
	if ps := h.exec(t, "term", "ps", "-o", "args"); !bytesContain(ps.Stdout, "bash -l", "sleep 305") {
		t.Fatalf("processes before close:\n%s", ps.Stdout)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("output did not end after Close")
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := term.Wait(wctx); err != nil {
		t.Fatalf("wait after close: %v", err)
	}
	waitNoProcess(t, h, "term", "bash -l")
	waitNoProcess(t, h, "term", "sleep 305")
}

func TestTerminalExitCode(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "termx"})
	term, err := h.m.Terminal(context.Background(), "termx", TerminalRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	out, ended := pumpTerminal(term)
	term.Write([]byte("exit 3\n"))
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatalf("the shell did not end; output %q", out.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code, err := term.Wait(ctx); err != nil || code != 3 {
		t.Fatalf("exit code %d, %v; want 3", code, err)
	}
}

// A terminal whose command ends before its size is set (E2B's PTY "bash -c 'exit 5'")
// still starts and tells its exit code: the engine refuses to resize an exec that has
// ended, and that refusal failed the whole terminal as an internal error.
func TestTerminalCommandThatEndsAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "termq"})
	for i := range 10 {
		term, err := h.m.Terminal(context.Background(), "termq", TerminalRequest{Cmd: []string{"sh", "-c", "exit 5"}, Cols: 80, Rows: 24})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		out, ended := pumpTerminal(term)
		select {
		case <-ended:
		case <-time.After(30 * time.Second):
			term.Close()
			t.Fatalf("run %d: the terminal did not end; output %q", i, out.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, err := term.Wait(ctx)
		cancel()
		term.Close()
		if err != nil || code != 5 {
			t.Fatalf("run %d: exit code %d, %v; want 5", i, code, err)
		}
	}
}

func TestTerminalRefuses(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "termr"})
	ctx := context.Background()
	cases := []struct {
		name string
		id   string
		req  TerminalRequest
		code Code
	}{
		{"unknown sandbox", "nope", TerminalRequest{}, CodeNotFound},
		{"huge size", "termr", TerminalRequest{Cols: 100000, Rows: 10}, CodeInvalid},
		{"bad env", "termr", TerminalRequest{Env: map[string]string{"A=B": "x"}}, CodeInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := h.m.Terminal(ctx, c.id, c.req); ErrorCode(err) != c.code {
				t.Fatalf("err = %v, want %s", err, c.code)
			}
		})
	}
	if err := h.m.Stop(ctx, "termr"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Terminal(ctx, "termr", TerminalRequest{}); ErrorCode(err) != CodeConflict || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("terminal on a stopped sandbox: %v, want conflict", err)
	}
}
