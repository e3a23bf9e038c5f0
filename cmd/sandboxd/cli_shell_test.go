package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
	"golang.org/x/sys/unix"
)

// shellSession is the sandboxd binary's shell command on a real pseudo-terminal, as a
// person runs it: the terminal is its controlling terminal, so a resize signals it.
type shellSession struct {
	t      *testing.T
	ptm    *os.File // the terminal's side the test types into and reads
	pts    *os.File // the CLI's side, kept open to read its settings
	out    *syncBuffer
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

func startShell(t *testing.T, d *daemon, id string) *shellSession {
	t.Helper()
	return startOnPTY(t, d, "shell", id)
}

// startOnPTY runs the sandboxd binary with args on a new pseudo-terminal.
func startOnPTY(t *testing.T, d *daemon, args ...string) *shellSession {
	t.Helper()
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptm.Close(); pts.Close() })
	if err := pty.Setsize(ptm, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dockertest.Binary(t, "./cmd/sandboxd"), args...)
	cmd.Env = append(os.Environ(), "SANDBOXD_API="+d.API, "SANDBOXD_TOKEN="+cliToken)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	s := &shellSession{t: t, ptm: ptm, pts: pts, out: &syncBuffer{}, cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-s.exited })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			s.out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *shellSession) termios() unix.Termios {
	s.t.Helper()
	tio, err := unix.IoctlGetTermios(int(s.pts.Fd()), unix.TCGETS)
	if err != nil {
		s.t.Fatal(err)
	}
	return *tio
}

func (s *shellSession) typeLine(line string) {
	s.t.Helper()
	if _, err := s.ptm.Write([]byte(line + "\r")); err != nil {
		s.t.Fatal(err)
	}
}

// ready waits until the remote shell runs commands: it types one whose output differs
// from what echoes back.
func (s *shellSession) ready() {
	s.t.Helper()
	s.typeLine("echo READY-$((40+2))")
	testutil.Eventually(s.t, time.Minute, "the shell answers", func() bool { return strings.Contains(s.out.String(), "READY-42") })
}

func (s *shellSession) exitCode(within time.Duration) int {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(within):
		s.t.Fatalf("sandboxd shell did not exit\n%s", s.out.String())
	}
	var ee *exec.ExitError
	if errors.As(s.err, &ee) {
		return ee.ExitCode()
	}
	if s.err != nil {
		s.t.Fatal(s.err)
	}
	return 0
}

// sandboxd shell on a real terminal: raw mode while it runs, the remote shell follows a
// resize, its exit code is the CLI's, and the terminal is restored after, also when the
// CLI is told to stop.
func TestCLIShell(t *testing.T) {
	t.Parallel()
	d := cliDaemon(t)
	r := newCLIRunner(t, d, cliToken)
	r.run("create", "-q", "--id", "sh").must(t, 0)

	s := startShell(t, d, "sh")
	before := s.termios()
	s.ready()
	if raw := s.termios(); raw.Lflag&unix.ICANON != 0 || raw.Lflag&unix.ECHO != 0 {
		t.Fatalf("the local terminal is not in raw mode while the shell runs: lflag %#x", raw.Lflag)
	}
	// The first size came with the terminal's opening.
	s.typeLine("stty size")
	testutil.Eventually(t, 30*time.Second, "stty size says 24 80", func() bool { return strings.Contains(s.out.String(), "24 80\r\n") })

	// A resize of the local terminal (SIGWINCH) reaches the remote one. The signal and the
	// typing race, so stty is asked again until it tells the new size.
	if err := pty.Setsize(s.ptm, &pty.Winsize{Rows: 40, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "stty size says 40 100 after the resize", func() bool {
		s.typeLine("stty size")
		return strings.Contains(s.out.String(), "40 100\r\n")
	})

	s.typeLine("exit 3")
	if code := s.exitCode(time.Minute); code != 3 {
		t.Fatalf("sandboxd shell exited %d after exit 3\n%s", code, s.out.String())
	}
	if after := s.termios(); after != before {
		t.Fatalf("the terminal was not restored:\nbefore %+v\nafter  %+v", before, after)
	}

	// SIGTERM to the CLI (a closing window, a kill): restored too, and 130 as interrupted.
	s2 := startShell(t, d, "sh")
	before = s2.termios()
	s2.ready()
	s2.cmd.Process.Signal(syscall.SIGTERM)
	if code := s2.exitCode(time.Minute); code != 130 {
		t.Fatalf("sandboxd shell exited %d on SIGTERM, want 130\n%s", code, s2.out.String())
	}
	if after := s2.termios(); after != before {
		t.Fatalf("the terminal was not restored after SIGTERM:\nbefore %+v\nafter  %+v", before, after)
	}
}

// cp draws a progress bar for a large file when it runs on a terminal, both ways.
// Input that is not a terminal, piped in all at once, runs in the shell, which then ends
// with the status of its last command: the end of input reaches the shell even when it
// arrives before the shell reads (a Ctrl-D written too early was lost, and the CLI hung).
func TestCLIShellPipedInput(t *testing.T) {
	t.Parallel()
	d := cliDaemon(t)
	r := newCLIRunner(t, d, cliToken)
	r.run("create", "-q", "--id", "pipe").must(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := r.runCtx(ctx, "echo piped-$((6*7))\nfalse\n", "shell", "pipe")
	if ctx.Err() != nil {
		t.Fatalf("sandboxd shell with piped input did not end: %+v", res)
	}
	if res.code != 1 || !strings.Contains(res.stdout, "piped-42") {
		t.Fatalf("sandboxd shell with piped input: exit %d, want 1 (false was last)\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
}

func TestCLICopyProgress(t *testing.T) {
	t.Parallel()
	d := cliDaemon(t)
	r := newCLIRunner(t, d, cliToken)
	r.run("create", "-q", "--id", "cp").must(t, 0)
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16) // 3 MiB
	local := r.writeLocal("big.bin", big)

	up := startOnPTY(t, d, "cp", local, "cp:workspace/big.bin")
	if code := up.exitCode(time.Minute); code != 0 {
		t.Fatalf("cp up exited %d\n%s", code, up.out.String())
	}
	back := filepath.Join(r.tmp, "back.bin")
	down := startOnPTY(t, d, "cp", "cp:workspace/big.bin", back)
	if code := down.exitCode(time.Minute); code != 0 {
		t.Fatalf("cp down exited %d\n%s", code, down.out.String())
	}
	for _, s := range []*shellSession{up, down} {
		testutil.Eventually(t, 10*time.Second, "the bar's last line", func() bool { return strings.Contains(s.out.String(), "copied 3.0 MiB") })
		out := s.out.String()
		if !strings.Contains(out, "100% [==============================] 3.0 MiB / 3.0 MiB") {
			t.Errorf("no finished progress bar:\n%q", out)
		}
	}
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("the file came back different (%d bytes, %v)", len(got), err)
	}
	// Not on a terminal, no bar.
	res := r.run("cp", local, "cp:workspace/big2.bin").must(t, 0)
	if strings.Contains(res.stderr, "%") || res.stdout != "copied 3.0 MiB to cp:workspace/big2.bin\n" {
		t.Fatalf("cp off a terminal: %+v", res)
	}
}
