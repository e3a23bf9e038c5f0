package agent

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The fake CLIs of the sandboxd/testkit image (images/testkit/fakeagent)
// stand in for the real ones in every test that runs a task. These tests
// hold them to the formats: each fake runs with its adapter's argv and
// environment, and its output must parse into the kinds of events the
// recorded fixtures parse into.

const testKey = "sk-fake-SECRET-5d41402abc4b2a76"

// buildFakes builds both fakes into a temporary directory, once per test.
func buildFakes(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := t.TempDir()
	cmd := exec.Command(goBin, "build", "-o", bin+string(os.PathSeparator), "./images/testkit/fakeagent/opencode", "./images/testkit/fakeagent/claude")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the fakes: %v\n%s", err, out)
	}
	return bin
}

// fakeCmd is the command the task runner would run for a, with the fake
// binary in place of the real one, in dir.
func fakeCmd(bin string, a Adapter, dir, prompt string, env ...string) *exec.Cmd {
	argv := a.Command(prompt, "")
	cmd := exec.Command(filepath.Join(bin, argv[0]), argv[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "FAKEAGENT_STEP_MS=0"}
	for k, v := range a.Env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Claude Code refuses bypass mode as root; tests may run as root, the
	// sandbox runs agents as uid 1000.
	if os.Geteuid() == 0 {
		cmd.Env = append(cmd.Env, "IS_SANDBOX=1")
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// kind names an event's kind: its type and its phase, role or status.
func kind(ev Event) string {
	return ev.Type + "/" + ev.Phase + ev.Role + ev.Status
}

func kinds(evs []Event) []string {
	var ks []string
	for _, ev := range evs {
		if k := kind(ev); !slices.Contains(ks, k) {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// fakeCase is one scenario a test prompt asks of both fakes.
type fakeCase struct {
	name     string
	prompt   string
	noKey    bool
	exitCode int
	files    bool     // index.html and notes.md written, and the normal answer
	want     []string // kinds that must be there
	check    func(t *testing.T, name string, g golden)
}

var fakeCases = []fakeCase{
	{name: "default", prompt: "hello from the test", files: true, want: []string{"file_changed/", "message/assistant", "status/session", "tool/completed", "usage/"}},
	{name: "unknown event", prompt: "one unknown-event please", files: true, want: []string{"raw/"}},
	{name: "sleep", prompt: "take a nap sleep=1", files: true, want: []string{"message/assistant", "usage/"}},
	{name: "fail", prompt: "please fail", exitCode: 1, want: []string{"error/"}},
	{name: "no key", prompt: "hello", noKey: true, exitCode: 1, want: []string{"error/"}, check: func(t *testing.T, name string, g golden) {
		if g.Result.FailureKind != FailureAuth {
			t.Errorf("failure kind = %q, want %s", g.Result.FailureKind, FailureAuth)
		}
	}},
	{name: "subagent", prompt: "ask a subagent first", files: true, check: func(t *testing.T, name string, g golden) {
		if g.Result.Subagents != 1 {
			t.Errorf("subagents = %d", g.Result.Subagents)
		}
		want := []string{TypeSubagentFinished}
		if name == "claude" {
			// Claude Code streams the subagent's lines; OpenCode's run prints its end only.
			want = []string{TypeSubagentStarted, TypeSubagentProgress, TypeSubagentProgress, TypeSubagentFinished}
			if m := g.Result.Usage.Models; len(m) != 2 {
				t.Errorf("usage by model = %v, want the main model and the subagent's", m)
			}
		}
		var got []string
		for _, ev := range g.Events {
			if strings.HasPrefix(ev.Type, "subagent_") {
				got = append(got, ev.Type)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("subagent events = %q, want %q", got, want)
		}
	}},
	{name: "recover", prompt: "recover from an error", files: true, want: []string{"warning/"}},
	{name: "hooks", prompt: "with hooks", files: true},
	{name: "deny", prompt: "deny one", want: []string{"permission_denied/"}, check: func(t *testing.T, name string, g golden) {
		if g.Result.Failed || g.Result.PermissionDenials != 1 {
			t.Errorf("result = %+v, want one denial and no failure", g.Result)
		}
	}},
	{name: "edit", prompt: "edit it", files: true, check: func(t *testing.T, name string, g golden) {
		var patches []string
		for _, ev := range g.Events {
			if ev.Type == TypeFileChanged && ev.Patch != "" {
				patches = append(patches, ev.Path+": "+ev.Patch)
			}
		}
		if len(patches) != 1 || !strings.HasPrefix(patches[0], "index.html: ") || !strings.Contains(patches[0], "\n+  <p>edited by fake-"+name+"</p>\n") {
			t.Errorf("patches = %q, want the edit of index.html", patches)
		}
	}},
	{name: "log", prompt: "log lines", files: true, want: []string{"log/"}},
	{name: "v2", prompt: "format=v2 subagent recover edit", files: true, want: []string{"warning/", "subagent_finished/completed"}},
	{name: "v2 fail", prompt: "format=v2 fail", exitCode: 1, check: func(t *testing.T, name string, g golden) {
		if g.Result.FailureKind != FailureServer {
			t.Errorf("failure kind = %q, want %s", g.Result.FailureKind, FailureServer)
		}
	}},
}

func TestFakeAgents(t *testing.T) {
	bin := buildFakes(t)
	keys := map[string]string{"opencode": "OPENCODE_API_KEY=" + testKey, "claude": "ANTHROPIC_API_KEY=" + testKey}
	for _, name := range Names() {
		base, _ := Lookup(name)
		// The kinds of events the recorded streams parse into.
		var recorded []Event
		for _, file := range fixtures(t, name) {
			recorded = append(recorded, parseFile(t, base, file).Events...)
		}
		for _, tt := range fakeCases {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				a := withDir(base, dir)
				var env []string
				if !tt.noKey {
					env = append(env, keys[name])
				}
				cmd := fakeCmd(bin, a, dir, tt.prompt, env...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				var exit *exec.ExitError
				switch {
				case err == nil && tt.exitCode != 0:
					t.Fatalf("exit 0, want %d", tt.exitCode)
				case errors.As(err, &exit) && exit.ExitCode() != tt.exitCode:
					t.Fatalf("exit %d, want %d; stderr: %s", exit.ExitCode(), tt.exitCode, stderr.String())
				case err != nil && !errors.As(err, &exit):
					t.Fatal(err)
				}
				if bytes.Contains(stdout.Bytes(), []byte(testKey)) || bytes.Contains(stderr.Bytes(), []byte(testKey)) {
					t.Fatal("the fake printed the provider key")
				}
				got := parseStream(t, a.NewParser(), &stdout)
				if len(got.Events) == 0 {
					t.Fatalf("no events; stderr: %s", stderr.String())
				}
				ks := kinds(got.Events)
				for _, k := range tt.want {
					if !slices.Contains(ks, k) {
						t.Errorf("no %s event in %q", k, ks)
					}
				}
				if tt.exitCode == 0 {
					// A run that worked shows nothing the recorded streams do not.
					fk := kinds(recorded)
					for _, k := range ks {
						if !slices.Contains(fk, k) {
							t.Errorf("event kind %s is not in the fixtures' kinds %q", k, fk)
						}
					}
				}
				if tt.exitCode != 0 && (!got.Result.Failed || got.Result.Error == "") {
					t.Errorf("result = %+v, want failed with an error", got.Result)
				}
				if tt.files {
					checkRun(t, dir, name, tt.prompt, got)
				}
				if tt.check != nil {
					tt.check(t, name, got)
				}
			})
		}
	}
}

// withDir is the adapter with its Dir set, so that paths come out relative.
func withDir(a Adapter, dir string) Adapter {
	switch a.(type) {
	case OpenCode:
		return OpenCode{Dir: dir}
	case Claude:
		return Claude{Dir: dir}
	}
	return a
}

// checkRun checks the files a fake wrote and what its stream said of them.
func checkRun(t *testing.T, dir, name, prompt string, got golden) {
	t.Helper()
	res := got.Result
	html, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h1>" + prompt + "</h1>", "made by fake-" + name} {
		if !strings.Contains(string(html), want) {
			t.Errorf("index.html lacks %q:\n%s", want, html)
		}
	}
	notes, err := os.ReadFile(filepath.Join(dir, "notes.md"))
	if err != nil || bytes.Contains(notes, []byte(testKey)) || bytes.Contains(html, []byte(testKey)) {
		t.Errorf("notes.md: %v (or a file holds the key)", err)
	}
	changed := slices.Compact(changedFiles(got)) // an edit changes index.html again
	if !slices.Equal(changed, []string{"index.html", "notes.md"}) {
		t.Errorf("file_changed paths = %q", changed)
	}
	if res.Failed || res.FinalMessage != "Created index.html and notes.md." || res.SessionID == "" || res.Usage.OutputTokens == 0 || res.Usage.CostUSD == 0 {
		t.Errorf("result = %+v", res)
	}
}

// TestFakeOpenCodeInterrupt: the 2.0 CLI ends a run it is asked to stop
// (SIGINT) with an "aborted" error line and exit code 130.
func TestFakeOpenCodeInterrupt(t *testing.T) {
	bin := buildFakes(t)
	dir := t.TempDir()
	a := OpenCode{Dir: dir}
	cmd := fakeCmd(bin, a, dir, "format=v2 sleep=30", "OPENCODE_API_KEY="+testKey)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	p := a.NewParser()
	sc := bufio.NewScanner(r)
	var evs []Event
	for sc.Scan() {
		evs = append(evs, p.Parse(sc.Bytes())...)
		if p.Result().FinalMessage != "" && cmd.Process != nil {
			cmd.Process.Signal(os.Interrupt) // once the agent has spoken
		}
	}
	evs = append(evs, p.(Finisher).Finish()...)
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("wait: %v, want exit 130", err)
	}
	if res := p.Result(); res.FailureKind != FailureAborted || evs[len(evs)-1].Type != TypeError {
		t.Errorf("result %+v, last event %+v; want aborted", res, evs[len(evs)-1])
	}
}

// TestFakeAgentsStream checks that a fake's lines arrive while it runs, not
// all at its exit: the runner streams them to clients as they come.
func TestFakeAgentsStream(t *testing.T) {
	bin := buildFakes(t)
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			a, _ := Lookup(name)
			cmd := fakeCmd(bin, withDir(a, dir), dir, "sleep=2", "ANTHROPIC_API_KEY="+testKey)
			// An *os.File as stdout: Wait then returns when the process
			// exits, without waiting for the reader.
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cmd.Stdout = w
			err = cmd.Start()
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			var waitErr error
			exited := make(chan struct{})
			go func() {
				waitErr = cmd.Wait()
				close(exited)
			}()
			defer func() { cmd.Process.Kill(); <-exited }() // gone even when a check fails
			sc := bufio.NewScanner(r)
			sc.Buffer(nil, 1<<20)
			p := a.NewParser()
			// The first message comes before two seconds of progress.
			for p.Result().FinalMessage == "" {
				if !sc.Scan() {
					t.Fatalf("the stream ended before a message: %v", sc.Err())
				}
				p.Parse(sc.Bytes())
			}
			select {
			case <-exited:
				t.Fatalf("the fake had exited (%v) when its first message was read", waitErr)
			default:
			}
			for sc.Scan() {
				p.Parse(sc.Bytes())
			}
			<-exited
			if waitErr != nil || p.Result().Failed {
				t.Fatalf("wait: %v; result %+v", waitErr, p.Result())
			}
		})
	}
}
