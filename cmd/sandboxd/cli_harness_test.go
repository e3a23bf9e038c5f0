package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The CLI's tests run it in-process against a real sandboxd (the e2e harness) and compare
// what it prints, and its exit status, with golden files in testdata/cli. Every answer
// the CLI reads from the API is checked against admin/openapi.json on the way.
//
//	go test ./cmd/sandboxd -run TestCLI -update   rewrites the golden files

var updateGolden = flag.Bool("update", false, "rewrite the CLI's golden files in testdata/cli")

// cliRunner runs the CLI against one daemon.
type cliRunner struct {
	t     *testing.T
	api   string
	token string
	tmp   string // a directory of local files, shown as <tmp> in golden files
	vt    *validatingTransport
	env   cliEnv
}

func newCLIRunner(t *testing.T, d *daemon, token string) *cliRunner {
	hc, vt := validatingClient(t)
	r := &cliRunner{t: t, api: d.API, token: token, tmp: t.TempDir(), vt: vt}
	r.env = cliEnv{httpClient: hc}
	return r
}

// cliResult is one run: what it printed and how it exited.
type cliResult struct {
	args   []string
	stdout string
	stderr string
	code   int
}

// run runs the CLI with args and stdin until it returns or ctx ends.
func (r *cliRunner) runCtx(ctx context.Context, stdin string, args ...string) cliResult {
	r.t.Helper()
	var out, errb bytes.Buffer
	env := r.env
	env.getenv = func(k string) string {
		switch k {
		case "SANDBOXD_API":
			return r.api
		case "SANDBOXD_TOKEN":
			return r.token
		}
		return ""
	}
	env.stdin, env.stdout, env.stderr = strings.NewReader(stdin), &out, &errb
	err := runCLI(ctx, args, env)
	code := exitStatus(err, &errb)
	return cliResult{args: args, stdout: out.String(), stderr: errb.String(), code: code}
}

func (r *cliRunner) run(args ...string) cliResult {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return r.runCtx(ctx, "", args...)
}

// golden compares res with testdata/cli/<name>.golden (after normalize), or rewrites it
// with -update.
func (r *cliRunner) golden(name string, res cliResult) {
	r.t.Helper()
	got := r.normalize(fmt.Sprintf("$ sandboxd %s\nexit %d\n--- stdout\n%s--- stderr\n%s", shellWords(res.args), res.code, res.stdout, res.stderr))
	path := filepath.Join("testdata", "cli", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			r.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		r.t.Errorf("%s: %v (run with -update to write it)\ngot:\n%s", name, err, got)
		return
	}
	if string(want) != got {
		r.t.Errorf("%s: the output differs from %s\n--- want\n%s\n--- got\n%s", name, path, want, got)
	}
}

// normalizers replace what changes from run to run: times, ages, durations, ids the
// server makes, addresses and ports.
var normalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "<time>"},
	{regexp.MustCompile(`\b\d+[smhd] ago\b`), "<age> ago"},
	{regexp.MustCompile(`\(in \d+[smhd]\)`), "(in <age>)"},
	{regexp.MustCompile(`request [0-9a-z]{26}\b`), "request <request-id>"},
	{regexp.MustCompile(`\b[0-9a-hjkmnp-tv-z]{26}\b`), "<ulid>"},
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), "<uuid>"},
	{regexp.MustCompile(`\bses_[0-9A-Za-z]+`), "ses_<id>"},
	{regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?\b`), "<addr>"},
	{regexp.MustCompile(`\.localhost:\d+`), ".localhost:<port>"},
	{regexp.MustCompile(`"(wake_duration_ms|duration_ms|used|inodes)": ?\d+`), `"$1": <n>`}, // disk usage: by the scan's pace
	{regexp.MustCompile(`\b\d+(\.\d+)?(ms|s)\b`), "<duration>"},
	{regexp.MustCompile(`(\S) {2,}`), "$1  "}, // table columns, whose widths follow the values above
}

func (r *cliRunner) normalize(s string) string {
	s = strings.ReplaceAll(s, r.tmp, "<tmp>")
	s = strings.ReplaceAll(s, r.api, "<api>")
	for _, n := range normalizers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// must fails the test unless res exited with code.
func (res cliResult) must(t *testing.T, code int) cliResult {
	t.Helper()
	if res.code != code {
		t.Fatalf("sandboxd %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(res.args, " "), res.code, code, res.stdout, res.stderr)
	}
	return res
}

// writeLocal writes a file in the runner's temporary directory and returns its path.
func (r *cliRunner) writeLocal(name string, content []byte) string {
	p := filepath.Join(r.tmp, name)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		r.t.Fatal(err)
	}
	return p
}

func readFileString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shellWords writes args as a shell would need them typed.
func shellWords(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$;&|<>()*?`\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
