package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
	"github.com/sandboxd/sandboxd/internal/testutil"
)

// The integration tests run the real binary as a child process (not as PID
// 1: it makes itself a subreaper so orphans still come to it), with a temp
// HOME and config.

// testBin is built once per test binary, into a directory TestMain removes.
var testBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testBin.dir != "" {
		os.RemoveAll(testBin.dir)
	}
	os.Exit(code)
}

// initBinary returns the path of a freshly built, static sandbox-init.
func initBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	testBin.once.Do(func() {
		testBin.dir, testBin.err = os.MkdirTemp("", "sandbox-init-test-")
		if testBin.err != nil {
			return
		}
		testBin.path = filepath.Join(testBin.dir, "sandbox-init")
		// No VCS stamp: the checkout may belong to another user (git refuses it).
		cmd := exec.Command("go", "build", "-buildvcs=false", "-o", testBin.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			testBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if testBin.err != nil {
		t.Fatal(testBin.err)
	}
	return testBin.path
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// initProc is a running supervisor.
type initProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	home   string
	stderr *syncBuffer
	done   chan struct{} // closed once it has exited
	state  *os.ProcessState
}

// startInit runs the supervisor with HOME=home (also its working directory)
// and --config config, with the relay on an ephemeral loopback port, and
// extra args. A still running supervisor gets SIGTERM at the end of the test.
func startInit(t *testing.T, home, config string, args ...string) *initProc {
	t.Helper()
	argv := append([]string{"--config", config, "--relay", "127.0.0.1:0"}, args...)
	cmd := exec.Command(initBinary(t), argv...)
	cmd.Env = append(envWithout(os.Environ(), "HOME"), "HOME="+home)
	cmd.Dir = home
	p := &initProc{t: t, cmd: cmd, home: home, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	// If the test binary dies, the supervisor is told to stop its services.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("sandbox-init stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

func envWithout(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// wait waits for the supervisor to exit, at most d, and returns its exit
// code.
func (p *initProc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.state.ExitCode()
	case <-time.After(d):
		p.t.Fatalf("sandbox-init still running after %s; stderr:\n%s", d, p.stderr.String())
		return 0
	}
}

// running reports whether the supervisor has not exited.
func (p *initProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *initProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// readState returns the state file, or nil when it is not there yet.
func (p *initProc) readState() *initproto.State {
	data, err := os.ReadFile(filepath.Join(p.home, ".sandboxd", "state.json"))
	if err != nil {
		return nil
	}
	var st initproto.State
	if err := json.Unmarshal(data, &st); err != nil {
		p.t.Fatalf("state file: %v\n%s", err, data) // written atomically: never partial
	}
	return &st
}

// service returns the named service from the state file, or nil.
func (p *initProc) service(name string) *initproto.ServiceState {
	if st := p.readState(); st != nil {
		for i := range st.Services {
			if st.Services[i].Name == name {
				return &st.Services[i]
			}
		}
	}
	return nil
}

// waitService waits until the named service satisfies ok, and returns it.
func (p *initProc) waitService(name string, ok func(*initproto.ServiceState) bool) initproto.ServiceState {
	p.t.Helper()
	var got *initproto.ServiceState
	testutil.Eventually(p.t, 10*time.Second, "service "+name, func() bool {
		got = p.service(name)
		return got != nil && ok(got)
	})
	return *got
}

// waitRunning waits until the named service runs, and returns it.
func (p *initProc) waitRunning(name string) initproto.ServiceState {
	p.t.Helper()
	return p.waitService(name, func(s *initproto.ServiceState) bool { return s.State == stateRunning && s.PID > 0 })
}

// logOf returns the named service's log.
func (p *initProc) logOf(name string) string {
	data, _ := os.ReadFile(filepath.Join(p.home, ".sandboxd", "logs", name+".log"))
	return string(data)
}

// writeConfig replaces the config file by rename, as sandboxd does.
func writeConfig(t *testing.T, path string, specs ...Spec) {
	t.Helper()
	data, err := json.Marshal(map[string]any{"services": specs})
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// procStat is the start of /proc/<pid>/stat.
type procStat struct {
	comm                string
	state               byte
	ppid, pgrp, session int
}

// readProcStat reads /proc/<pid>/stat; ok is false when the process is gone.
func readProcStat(pid int) (procStat, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	return parseProcStat(string(data))
}

// parseProcStat parses the start of a /proc/<pid>/stat line. The command
// name is in parentheses and may itself contain spaces and parentheses.
func parseProcStat(s string) (procStat, bool) {
	lp, rp := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if lp < 0 || rp < lp {
		return procStat{}, false
	}
	f := strings.Fields(s[rp+1:])
	if len(f) < 4 {
		return procStat{}, false
	}
	st := procStat{comm: s[lp+1 : rp], state: f[0][0]}
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgrp, _ = strconv.Atoi(f[2])
	st.session, _ = strconv.Atoi(f[3])
	return st, true
}

// gone reports whether pid has exited and been reaped.
func gone(pid int) bool {
	_, ok := readProcStat(pid)
	return !ok
}
