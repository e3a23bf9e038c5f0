package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// chunkWriter records what it is given and signals each write.
type chunkWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes chan struct{} // one token per write, never blocks the writer
}

func newChunkWriter() *chunkWriter { return &chunkWriter{writes: make(chan struct{}, 1024)} }

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	select {
	case w.writes <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *chunkWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the output contains s.
func (w *chunkWriter) waitFor(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for !strings.Contains(w.String(), s) {
		select {
		case <-w.writes:
		case <-deadline.C:
			t.Fatalf("no %q within %s; got %q", s, within, w.String())
		}
	}
}

// The first line arrives while the command still runs: the command cannot end before the
// test sends it a line on stdin, which it does only after seeing "first".
func TestExecStreamDeliversOutputBeforeTheEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "stream"})
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close() // on a failure below: the command reads EOF and ends, so does ExecStream
	out, errOut := newChunkWriter(), newChunkWriter()
	type result struct {
		st  ExecStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := h.m.ExecStream(context.Background(), "stream", ExecRequest{
			Cmd:   []string{"sh", "-c", `echo first; echo warn >&2; read line; echo "got $line"; exit 4`},
			Stdin: stdinR,
		}, out, errOut)
		done <- result{st, err}
	}()
	out.waitFor(t, "first\n", 30*time.Second)
	select {
	case r := <-done:
		t.Fatalf("exec ended before its input was sent: %+v", r)
	default:
	}
	errOut.waitFor(t, "warn\n", 10*time.Second)
	io.WriteString(stdinW, "hello\n")
	stdinW.Close()
	r := <-done
	if r.err != nil || r.st.ExitCode != 4 || r.st.TimedOut {
		t.Fatalf("exec = %+v, %v", r.st, r.err)
	}
	if out.String() != "first\ngot hello\n" || errOut.String() != "warn\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

func TestExecEnvCwdStdin(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "envcwd"})
	cases := []struct {
		name string
		req  ExecRequest
		want string
	}{
		{"env", ExecRequest{Cmd: []string{"sh", "-c", `echo "$A|$B"`}, Env: map[string]string{"A": "one two", "B": "x=y"}}, "one two|x=y\n"},
		{"relative cwd", ExecRequest{Cmd: []string{"pwd"}, Cwd: "workspace/app"}, "/home/sandbox/workspace/app\n"},
		{"absolute cwd", ExecRequest{Cmd: []string{"pwd"}, Cwd: "/tmp"}, "/tmp\n"},
		{"default cwd", ExecRequest{Cmd: []string{"pwd"}}, "/home/sandbox\n"},
		{"stdin", ExecRequest{Cmd: []string{"sh", "-c", "cat; echo end"}, Stdin: strings.NewReader("a\nb\n")}, "a\nb\nend\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := h.m.Exec(context.Background(), "envcwd", c.req)
			if err != nil || string(res.Stdout) != c.want || res.ExitCode != 0 {
				t.Fatalf("exec = %+v %q %q, %v; want %q", res.ExecStatus, res.Stdout, res.Stderr, err, c.want)
			}
		})
	}
}

// A cwd the runtime cannot enter is the caller's mistake, said in plain words as a
// CodeInvalid error with nothing written, not Docker's "OCI runtime exec failed: …" in
// stdout with exit code 126 (or, detached, an internal error). A program that prints
// those words itself is left alone.
func TestExecCwdTheRuntimeRefuses(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "badcwd"})
	ctx := context.Background()
	if _, err := h.m.Exec(ctx, "badcwd", ExecRequest{Cmd: []string{"touch", "afile"}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ cwd, want string }{
		{"nodir", `cwd "nodir" (/home/sandbox/nodir) does not exist in the sandbox`},
		{"afile", `cwd "afile" (/home/sandbox/afile) is not a directory`},
	}
	for _, c := range cases {
		var out, errOut strings.Builder
		st, err := h.m.ExecStream(ctx, "badcwd", ExecRequest{Cmd: []string{"true"}, Cwd: c.cwd}, &out, &errOut)
		if ErrorCode(err) != CodeInvalid || ErrorMessage(err) != c.want || out.Len()+errOut.Len() != 0 {
			t.Errorf("cwd %q: %+v, %v; stdout %q stderr %q\nwant the error %q and no output", c.cwd, st, err, out.String(), errOut.String(), c.want)
		}
	}
	// A detached exec: the engine refuses its start with the same words, as an error.
	if d, err := h.m.ExecDetached(ctx, "badcwd", ExecRequest{Cmd: []string{"true"}, Cwd: "nodir"}); ErrorCode(err) != CodeInvalid || ErrorMessage(err) != cases[0].want {
		t.Errorf("detached: %+v, %v; want the error %q", d, err, cases[0].want)
	}
	res, err := h.m.Exec(ctx, "badcwd", ExecRequest{Cmd: []string{"sh", "-c", `printf 'OCI runtime exec failed: chdir to cwd'; exit 126`}})
	if err != nil || res.ExitCode != 126 || string(res.Stdout) != "OCI runtime exec failed: chdir to cwd" {
		t.Fatalf("a program's own words: %+v %q, %v", res.ExecStatus, res.Stdout, err)
	}
}

// failWriter fails every write, as a response to a client that went away does.
type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("client went away") }

// A writer that fails means nobody reads the output any more: the command is killed, not
// left to run unseen.
func TestExecStreamKillsWhenTheWriterFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "wfail"})
	_, err := h.m.ExecStream(context.Background(), "wfail", ExecRequest{Cmd: []string{"sh", "-c", "echo x; sleep 302"}}, failWriter{}, failWriter{})
	if err == nil {
		t.Fatal("exec with a failing writer succeeded")
	}
	waitNoProcess(t, h, "wfail", "sleep 302")
}

// Nothing is written to the caller's writers once ExecStream has returned, even when it
// returns because ctx ended while output still flows.
func TestExecStreamNoWriteAfterReturn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(t, CreateRequest{ID: "nowrite"})
	ctx, cancel := context.WithCancel(context.Background())
	w := &closableWriter{seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := h.m.ExecStream(ctx, "nowrite", ExecRequest{Cmd: []string{"sh", "-c", "while :; do echo spam; done"}}, w, w)
		done <- err
	}()
	select {
	case <-w.seen:
	case err := <-done: // never wrote: fail rather than wait forever
		t.Fatalf("exec ended before its first write: %v", err)
	}
	cancel()
	err := <-done
	w.close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("exec = %v, want canceled", err)
	}
	h.exec(t, "nowrite", "true") // time for a stray copy to show itself, were there one
	if w.late() {
		t.Fatal("a write reached the writer after ExecStream returned")
	}
}

type closableWriter struct {
	mu       sync.Mutex
	once     sync.Once
	seen     chan struct{}
	closed   bool
	lateSeen bool
}

func (w *closableWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.seen) })
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.lateSeen = true
	}
	return len(p), nil
}

func (w *closableWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func (w *closableWriter) late() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lateSeen
}
