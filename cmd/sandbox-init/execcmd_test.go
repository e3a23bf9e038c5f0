package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// runBinary runs sandbox-init with args to completion and returns its exit
// code and stderr.
func runBinary(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(initBinary(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%q did not finish", args)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestExecLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "tasks", "t1", "out.log")
	code, stderr := runBinary(t, "exec", "--log", logPath, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
	if code != 7 {
		t.Fatalf("exit code %d, want 7; stderr %q", code, stderr)
	}
	if got := readFile(t, logPath); got != "out\nerr\n" {
		t.Errorf("log = %q", got)
	}
	if got := readFile(t, logPath+".exit"); got != "7" {
		t.Errorf(".exit = %q, want 7", got)
	}
	for p, want := range map[string]os.FileMode{filepath.Dir(logPath): 0o700, logPath: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", p, fi.Mode(), err, want)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(logPath))
	if len(entries) != 2 {
		t.Errorf("files next to the log: %v, want out.log and out.log.exit", entries)
	}

	// The log is appended to, and .exit replaced.
	if code, _ := runBinary(t, "exec", "--log", logPath, "--", "echo", "again"); code != 0 {
		t.Fatalf("second run: exit %d", code)
	}
	if got := readFile(t, logPath); got != "out\nerr\nagain\n" {
		t.Errorf("log after a second run = %q", got)
	}
	if got := readFile(t, logPath+".exit"); got != "0" {
		t.Errorf(".exit after a second run = %q", got)
	}
}

func TestExecLogForwardsSignals(t *testing.T) {
	t.Parallel()
	logPath := filepath.Join(t.TempDir(), "out.log")
	cmd := exec.Command(initBinary(t), "exec", "--log", logPath, "--", "sh", "-c", "echo ready; exec sleep 1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })

	testutil.Eventually(t, 5*time.Second, "the command to start", func() bool {
		data, _ := os.ReadFile(logPath)
		return string(data) == "ready\n"
	})
	cmd.Process.Signal(syscall.SIGTERM) // to the wrapper only: it passes it on
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM was not passed on")
	}
	if code := cmd.ProcessState.ExitCode(); code != 128+15 {
		t.Errorf("exit code %d, want 143", code)
	}
	if got := readFile(t, logPath+".exit"); got != "143" {
		t.Errorf(".exit = %q, want 143", got)
	}
}

func TestExecNotFound(t *testing.T) {
	t.Parallel()
	logPath := filepath.Join(t.TempDir(), "out.log")
	for _, args := range [][]string{
		{"exec", "--", "sandbox-no-such-command"},
		{"exec", "--log", logPath, "--", "sandbox-no-such-command"},
		{"exec", "--", "/no/such/path"},
	} {
		code, stderr := runBinary(t, args...)
		name := args[len(args)-1]
		if code != 127 || !strings.Contains(stderr, "sandbox-init: exec: "+name+": not found") {
			t.Errorf("%q: exit %d, stderr %q; want 127 and not found", args, code, stderr)
		}
	}
	if got := readFile(t, logPath+".exit"); got != "127" {
		t.Errorf(".exit = %q, want 127", got)
	}
	if got := readFile(t, logPath); !strings.Contains(got, "not found") {
		t.Errorf("log = %q, want the reason", got)
	}
}

func TestExecIsGroupAndSessionLeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		attr *syscall.SysProcAttr
	}{
		{name: "from another group", attr: nil},
		// Already a group leader (as with docker exec -t): setsid fails
		// with EPERM, which is fine.
		{name: "already group leader", attr: &syscall.SysProcAttr{Setpgid: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(initBinary(t), "exec", "--", "sleep", "1000")
			cmd.SysProcAttr = tt.attr
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			defer func() { cmd.Process.Kill(); <-done }()
			pid := cmd.Process.Pid

			var st procStat
			testutil.Eventually(t, 5*time.Second, "sleep to replace sandbox-init", func() bool {
				var ok bool
				st, ok = readProcStat(pid)
				select {
				case <-done:
					t.Fatalf("exited: %v; stderr %q", cmd.ProcessState, stderr.String())
				default:
				}
				return ok && st.comm == "sleep"
			})
			if st.pgrp != pid {
				t.Errorf("pgrp = %d, want the pid %d", st.pgrp, pid)
			}
			if tt.attr == nil && st.session != pid {
				t.Errorf("session = %d, want the pid %d", st.session, pid)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(initBinary(t), "version")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "sandbox-init ") {
		t.Errorf("version = %q", out)
	}
}

// With a cap, the log keeps the first bytes and one line saying the rest is gone; the
// command runs to its end unhurt, the variable does not reach it, and a process it leaves
// behind holding the output does not hold the exit file back.
func TestExecLogCap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "out.log")
	cmd := exec.Command(initBinary(t), "exec", "--log", logPath, "--", "sh", "-c",
		`echo "var=${SANDBOX_INIT_LOG_MAX:-unset}"; head -c 1000000 /dev/zero | tr '\0' x; (sleep 30; echo late) & exit 3`)
	cmd.Env = append(os.Environ(), "SANDBOX_INIT_LOG_MAX=4096")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// sandbox-init leads the group: the background sleep goes with it.
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("exit %d (%v), want 3", cmd.ProcessState.ExitCode(), err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the exit waited %s for a background process", d)
	}
	got := readFile(t, logPath)
	if !strings.HasPrefix(got, "var=unset\nxxxx") || !strings.HasSuffix(got, "bytes; the rest is not kept]\n") || len(got) > 4096+100 {
		t.Fatalf("capped log of %d bytes: %.30q … %q", len(got), got, got[max(0, len(got)-60):])
	}
	if got := readFile(t, logPath+".exit"); got != "3" {
		t.Fatalf(".exit = %q", got)
	}
}
