package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
)

// hookEnv, set in the environment of this test binary, makes it run as sandboxd with
// lifecycle's hook blocking forever at the point it names (startHooked). Only this test
// binary reads it: the production sandboxd has no such variable or flag.
const hookEnv = "SANDBOXD_TEST_CHILD_HOOK"

func TestMain(m *testing.M) {
	if point := os.Getenv(hookEnv); point != "" {
		os.Exit(hookedSandboxd(point))
	}
	code := m.Run()
	dockertest.RemoveBuilt()
	os.Exit(code)
}

// hookedSandboxd is main with a lifecycle hook that announces point in the log and blocks
// there forever, so a crash test can kill -9 the process at that instant.
func hookedSandboxd(point string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hooks := testHooks{lifecycle: func(p string) {
		if p == point {
			fmt.Fprintf(os.Stderr, "{\"level\":\"WARN\",\"msg\":\"test hook reached; blocking\",\"point\":%q}\n", p)
			select {}
		}
	}}
	if err := runWith(ctx, os.Args[1:], os.Getenv, os.Stderr, hooks); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd:", err)
		return 1
	}
	return 0
}

// env is one sandboxd's configuration in a test: a temp data dir, loopback :0 binds, the
// testkit image, a fresh network, and cleanup of every container of the instance.
type env struct {
	t      testing.TB
	docker *client.Client
	vars   map[string]string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	docker := dockertest.Client(t)
	data := t.TempDir()
	e := &env{t: t, docker: docker, vars: map[string]string{
		"SANDBOXD_DATA_DIR":   data,
		"SANDBOXD_API_BIND":   "127.0.0.1:0",
		"SANDBOXD_HTTP_BIND":  "127.0.0.1:0",
		"SANDBOXD_IMAGE":      dockertest.Testkit,
		"SANDBOXD_NETWORK":    dockertest.Network(t, docker),
		"SANDBOXD_INIT_PATH":  dockertest.Binary(t, "./cmd/sandbox-init"),
		"SANDBOXD_NOFILE":     "4096",
		"SANDBOXD_LOG_LEVEL":  "debug",
		"SANDBOXD_MAX_STARTS": "32",
	}}
	dockertest.CleanupInstance(t, docker, lifecycle.InstanceOf(data))
	return e
}

func (e *env) data() string { return e.vars["SANDBOXD_DATA_DIR"] }

// containerName is the Docker name of sandbox id's container (lifecycle's naming).
func (e *env) containerName(id string) string {
	return "sandboxd-" + lifecycle.InstanceOf(e.data())[:6] + "-" + id
}

// daemon is a running sandboxd and its addresses.
type daemon struct {
	API  string // http://127.0.0.1:port
	HTTP string // 127.0.0.1:port of the edge
	logs *lineLog
	stop func() error
}

// start runs sandboxd in this process through run(), as main does.
func (e *env) start() *daemon {
	e.t.Helper()
	return e.startServe()
}

// startServe is start with flags for `sandboxd serve`.
func (e *env) startServe(flags ...string) *daemon {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLineLog()
	done := make(chan error, 1)
	vars := e.vars
	args := append([]string{"serve"}, flags...)
	go func() { done <- run(ctx, args, func(k string) string { return vars[k] }, logs) }()
	d := &daemon{logs: logs}
	var once sync.Once
	var stopErr error
	d.stop = func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	e.t.Cleanup(func() { d.stop() })
	select {
	case line := <-logs.serving:
		d.parseServing(e.t, line)
	case err := <-done:
		e.t.Fatalf("sandboxd exited before serving: %v\n%s", err, logs)
	case <-time.After(2 * time.Minute):
		e.t.Fatalf("sandboxd did not serve in time\n%s", logs)
	}
	return d
}

// process is sandboxd as a child process, for tests that kill -9 it.
type process struct {
	*daemon
	cmd    *exec.Cmd
	exited <-chan struct{} // closed once cmd.Wait returns
}

func (e *env) startProcess(extra map[string]string) *process {
	e.t.Helper()
	return e.startBinary(dockertest.Binary(e.t, "./cmd/sandboxd"), extra)
}

// startHooked runs this test binary as sandboxd, blocking forever at the lifecycle hook
// point (hookedSandboxd), for tests that kill it there or need a start that never ends.
func (e *env) startHooked(point string, extra map[string]string) *process {
	e.t.Helper()
	self, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	vars := map[string]string{hookEnv: point}
	for k, v := range extra {
		vars[k] = v
	}
	return e.startBinary(self, vars)
}

func (e *env) startBinary(bin string, extra map[string]string) *process {
	e.t.Helper()
	return e.startCommand([]string{bin, "serve"}, extra)
}

// startLimited runs the sandboxd binary with its open-file limit, soft and hard, at nofile
// (the shell sets it and execs sandboxd in the same process), so that a test can run the
// daemon out of descriptors quickly. The hard limit too: sandboxd raises the soft one to it.
func (e *env) startLimited(nofile int, extra map[string]string) *process {
	e.t.Helper()
	bin := dockertest.Binary(e.t, "./cmd/sandboxd")
	return e.startCommand([]string{"/bin/sh", "-c", `ulimit -n "$0" && exec "$1" serve`, strconv.Itoa(nofile), bin}, extra)
}

// startCommand runs argv, which execs sandboxd in its own process, with the env's
// variables and extra.
func (e *env) startCommand(argv []string, extra map[string]string) *process {
	e.t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	for k, v := range e.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := newLineLog()
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	// cmd.Wait is the only wait: stop, kill9 and the cleanup all read its result.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	p := &process{daemon: &daemon{logs: logs}, cmd: cmd, exited: exited}
	p.stop = func() error { cmd.Process.Signal(syscall.SIGTERM); <-exited; return waitErr }
	// Gone before CleanupInstance (registered earlier, so run later) removes its containers.
	e.t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	select {
	case line := <-logs.serving:
		p.parseServing(e.t, line)
	case <-exited:
		e.t.Fatalf("sandboxd exited before serving: %v\n%s", waitErr, logs)
	case <-time.After(2 * time.Minute):
		e.t.Fatalf("sandboxd did not serve in time\n%s", logs)
	}
	return p
}

// kill9 kills the process with SIGKILL and waits for it to be gone.
func (p *process) kill9(t testing.TB) {
	t.Helper()
	p.cmd.Process.Kill()
	<-p.exited
}

func (d *daemon) parseServing(t testing.TB, line string) {
	var v struct{ API, HTTP string }
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatalf("serving line %q: %v", line, err)
	}
	d.API, d.HTTP = "http://"+v.API, v.HTTP
}

// lineLog collects sandboxd's JSON log lines and signals the "serving" one.
type lineLog struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	partial []byte
	serving chan string
	waiters []waiter
}

type waiter struct {
	substr string
	ch     chan string
}

func newLineLog() *lineLog { return &lineLog{serving: make(chan string, 1)} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if strings.Contains(line, `"msg":"serving"`) {
			select {
			case l.serving <- line:
			default:
			}
		}
		kept := l.waiters[:0]
		for _, w := range l.waiters {
			if strings.Contains(line, w.substr) {
				w.ch <- line
				continue
			}
			kept = append(kept, w)
		}
		l.waiters = kept
	}
	return len(p), nil
}

// expect registers for the first line containing substr written from now on and returns
// the function that waits for it. Register before the action that writes the line, or a
// fast action can write it before anyone listens.
func (l *lineLog) expect(substr string) func(t testing.TB, within time.Duration) string {
	ch := make(chan string, 1)
	l.mu.Lock()
	l.waiters = append(l.waiters, waiter{substr, ch})
	l.mu.Unlock()
	return func(t testing.TB, within time.Duration) string {
		t.Helper()
		select {
		case line := <-ch:
			return line
		case <-time.After(within):
			t.Fatalf("no log line with %q within %s\n%s", substr, within, l)
			return ""
		}
	}
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// call sends a JSON request to the API and decodes the answer into out (when not nil).
func call(t testing.TB, method, url string, body any, out any) int {
	t.Helper()
	return callAs(t, "", method, url, body, out)
}

// callAs is call with a bearer token (none when ""). An out of type *[]byte gets the raw
// body.
func callAs(t testing.TB, token, method, url string, body any, out any) int {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	checkAPIResponse(t, req, resp.StatusCode, resp.Header, raw) // against admin/openapi.json
	if b, ok := out.(*[]byte); ok {
		*b = raw
	} else if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode
}

// sandboxJSON is the fields of an API sandbox tests look at.
type sandboxJSON struct {
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	IP          string            `json:"ip"`
	Ports       []int             `json:"ports"`
	PreviewURLs map[string]string `json:"preview_urls"`
	Error       string            `json:"error"`
}

type execJSON struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exit_code"`
	TimedOut bool   `json:"timed_out"`
}

func mustCreate(t testing.TB, d *daemon, body any) sandboxJSON {
	t.Helper()
	var sb sandboxJSON
	if code := call(t, "POST", d.API+"/v1/sandboxes", body, &sb); code != http.StatusCreated {
		t.Fatalf("create: %d %+v\n%s", code, sb, d.logs)
	}
	return sb
}

func mustExec(t testing.TB, d *daemon, id string, cmd ...string) execJSON {
	t.Helper()
	var res execJSON
	if code := call(t, "POST", d.API+"/v1/sandboxes/"+id+"/exec", map[string]any{"cmd": cmd}, &res); code != http.StatusOK {
		t.Fatalf("exec %v: %d %+v", cmd, code, res)
	}
	return res
}

func getSandbox(t testing.TB, d *daemon, id string) (sandboxJSON, int) {
	t.Helper()
	var sb sandboxJSON
	code := call(t, "GET", d.API+"/v1/sandboxes/"+id, nil, &sb)
	return sb, code
}

func describe(v any) string { b, _ := json.Marshal(v); return fmt.Sprintf("%s", b) }
