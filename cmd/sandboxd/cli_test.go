package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

const cliToken = "cli-test-secret-4d1f"

// cliDaemon is a sandboxd with an API token, as in production.
func cliDaemon(t *testing.T) *daemon {
	e := newEnv(t)
	e.vars["SANDBOXD_API_TOKENS"] = "cli:" + cliToken
	return e.start()
}

// Each command's human and --json output, and its exit status, against a real sandboxd.
func TestCLI(t *testing.T) {
	t.Parallel()
	d := cliDaemon(t)
	r := newCLIRunner(t, d, cliToken)

	r.golden("version", r.run("version").must(t, 0))
	r.golden("version-json", r.run("version", "--json").must(t, 0))
	anon := newCLIRunner(t, d, "")
	r.golden("no-token", anon.run("ls").must(t, 1))
	r.golden("usage", r.run("exec", "cli").must(t, 2))

	// Sandboxes.
	r.golden("create", r.run("create", "--id", "cli", "-p", "3000", "-e", "FOO=bar", "--label", "team=web", "--memory", "1G").must(t, 0))
	r.golden("create-json", r.run("create", "--json", "--id", "cli-j", "--cpus", "0.5").must(t, 0))
	r.golden("create-quiet", r.run("create", "-q", "--id", "cli-q").must(t, 0))
	r.golden("create-taken", r.run("create", "--id", "cli").must(t, 1))
	r.golden("ls", r.run("ls").must(t, 0))
	r.golden("ls-json", r.run("ls", "--json", "--label", "team=web").must(t, 0))
	r.golden("get", r.run("get", "cli").must(t, 0))
	r.golden("get-json", r.run("get", "cli", "--json").must(t, 0))
	r.golden("get-missing", r.run("get", "nope").must(t, 1))
	r.golden("images", r.run("images").must(t, 0))
	r.golden("images-json", r.run("images", "--json").must(t, 0))

	// Commands: output as it comes, and the command's exit code.
	r.golden("exec", r.run("exec", "cli", "--", "sh", "-c", "echo out; echo err >&2; exit 7").must(t, 7))
	r.golden("exec-json", r.run("exec", "--json", "cli", "--", "sh", "-c", "echo hi; exit 3").must(t, 3))
	r.golden("exec-flags", r.run("exec", "-e", "X=1", "-w", "workspace", "cli", "sh", "-c", "echo $X $(pwd)").must(t, 0))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	r.golden("exec-stdin", r.runCtx(ctx, "piped\n", "exec", "-i", "cli", "--", "cat").must(t, 0))
	cancel()
	r.golden("exec-missing", r.run("exec", "nope", "--", "true").must(t, 1))

	// Files.
	local := r.writeLocal("hello.txt", []byte("hello\n"))
	r.golden("cp-up", r.run("cp", local, "cli:workspace/app/").must(t, 0))
	r.golden("cp-down", r.run("cp", "cli:workspace/app/hello.txt", r.tmp+"/back.txt").must(t, 0))
	if got := readFileString(t, r.tmp+"/back.txt"); got != "hello\n" {
		t.Fatalf("the file copied back holds %q", got)
	}
	r.golden("cp-stdout", r.run("cp", "cli:workspace/app/hello.txt", "-").must(t, 0))
	r.golden("cp-json", r.run("cp", "--json", local, "cli:workspace/app/again.txt").must(t, 0))
	r.golden("cp-missing", r.run("cp", "cli:workspace/app/none.txt", "-").must(t, 1))
	r.golden("cp-both-local", r.run("cp", local, r.tmp+"/x").must(t, 2))

	// Previews.
	r.golden("preview", r.run("preview", "cli").must(t, 0))
	r.golden("preview-json", r.run("preview", "cli", "3000", "--json").must(t, 0))
	r.golden("preview-undeclared", r.run("preview", "cli", "4000").must(t, 1))
	// A token URL differs every time: check its shape, not its bytes.
	if tok := r.run("preview", "cli", "3000", "--token").must(t, 0); !strings.Contains(tok.stdout, "/?sandboxd_token=") || !strings.Contains(tok.stdout, "opens the private port until") {
		t.Fatalf("preview --token printed %q", tok.stdout)
	}

	// Lifecycle.
	r.golden("keepalive", r.run("keepalive", "cli", "--for", "1h").must(t, 0))
	r.golden("keepalive-json", r.run("keepalive", "cli-j", "--json").must(t, 0))
	r.golden("pause", r.run("pause", "cli").must(t, 0))
	if sb := r.run("get", "cli", "--json").must(t, 0); !strings.Contains(sb.stdout, `"status": "paused"`) {
		t.Fatalf("after pause: %s", sb.stdout)
	}
	r.golden("stop", r.run("stop", "cli").must(t, 0)) // a paused sandbox stops too
	r.golden("stop-json", r.run("stop", "cli-j", "--json").must(t, 0))
	r.golden("start", r.run("start", "cli").must(t, 0))
	r.golden("start-json", r.run("start", "cli-j", "--json").must(t, 0))
	r.golden("logs", r.run("logs", "cli").must(t, 0))

	// Completion scripts, and sandbox ids completed from the API.
	for _, sh := range []string{"bash", "zsh", "fish"} {
		res := r.run("completion", sh).must(t, 0)
		if !strings.Contains(res.stdout, "sandboxd") || len(res.stdout) < 500 {
			t.Errorf("completion %s: %.200s", sh, res.stdout)
		}
	}
	if res := r.run("__complete", "get", "cl").must(t, 0); !strings.Contains(res.stdout, "cli\trunning") {
		t.Errorf("completing an id: %q", res.stdout)
	}

	// Removal: the workspace stays after rm, and purge removes it (after rm too). Several
	// ids are each tried; one that fails fails the command.
	r.golden("rm", r.run("rm", "cli-q", "nope").must(t, 1))
	r.golden("rm-json", r.run("rm", "cli-j", "--json").must(t, 0))
	r.golden("purge", r.run("purge", "cli-q").must(t, 0))
	r.golden("purge-json", r.run("purge", "cli-j", "--json").must(t, 0))
	r.golden("ls-after", r.run("ls").must(t, 0))
	if r.vt.checked() < 40 {
		t.Errorf("only %d answers were checked against the document", r.vt.checked())
	}
}

// logs -f follows a service's log as it grows, without waking or keeping the sandbox up.
func TestCLILogsFollow(t *testing.T) {
	t.Parallel()
	d := cliDaemon(t)
	r := newCLIRunner(t, d, cliToken)
	body := `{"id":"lf","services":[{"name":"ticker","cmd":["sh","-c","i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]}]}`
	r.runCtx(context.Background(), body, "create", "-q", "-f", "-").must(t, 0)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan cliResult, 1)
	go func() {
		env := r.env
		env.getenv = func(k string) string { return map[string]string{"SANDBOXD_API": r.api, "SANDBOXD_TOKEN": r.token}[k] }
		env.stdin, env.stdout, env.stderr = strings.NewReader(""), out, &bytes.Buffer{}
		err := runCLI(ctx, []string{"logs", "-f", "lf", "ticker"}, env)
		done <- cliResult{code: exitStatus(err, &bytes.Buffer{})}
	}()
	testutil.Eventually(t, 30*time.Second, "logs -f shows ticks 1 to 4 in order", func() bool {
		return strings.Contains(out.String(), "tick 4\n")
	})
	cancel()
	if res := <-done; res.code != 0 {
		t.Fatalf("logs -f ended with %d when interrupted", res.code)
	}
	s := out.String()
	prev := -1
	for _, want := range []string{"tick 1\n", "tick 2\n", "tick 3\n", "tick 4\n"} {
		i := strings.Index(s, want)
		if i <= prev {
			t.Fatalf("followed log, not every tick once in order:\n%s", s)
		}
		prev = i
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
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
