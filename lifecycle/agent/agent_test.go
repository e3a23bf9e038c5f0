package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the parsers' output")

// golden is the content of a testdata/<name>.golden.json file.
type golden struct {
	Events []Event `json:"events"`
	Result Result  `json:"result"`
}

// parseFile feeds the lines of a file to a new parser of a, as the task
// runner does.
func parseFile(t *testing.T, a Adapter, file string) golden {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return parseStream(t, a.NewParser(), f)
}

// parseStream feeds r's lines to p and then tells it the stream ended.
func parseStream(t *testing.T, p Parser, r io.Reader) golden {
	t.Helper()
	var g golden
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		g.Events = append(g.Events, p.Parse(sc.Bytes())...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if f, ok := p.(Finisher); ok {
		g.Events = append(g.Events, f.Finish()...)
	}
	g.Result = p.Result()
	return g
}

// fixtures lists the recorded streams of an adapter: testdata/<name>/*.jsonl.
func fixtures(t testing.TB, name string) []string {
	files, err := filepath.Glob(filepath.Join("testdata", name, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures for %s: %v", name, err)
	}
	return files
}

// TestGolden parses the recorded streams in testdata and compares the
// events, in order, and the result with the .golden.json beside each.
// Run with -update to rewrite the golden files after a deliberate change.
func TestGolden(t *testing.T) {
	for _, name := range Names() {
		a, _ := Lookup(name)
		for _, file := range fixtures(t, name) {
			t.Run(name+"/"+strings.TrimSuffix(filepath.Base(file), ".jsonl"), func(t *testing.T) {
				got := parseFile(t, a, file)
				b, err := json.MarshalIndent(got, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				b = append(b, '\n')
				gold := strings.TrimSuffix(file, ".jsonl") + ".golden.json"
				if *update {
					if err := os.WriteFile(gold, b, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(gold)
				if err != nil {
					t.Fatalf("%v (run go test -update to write it)", err)
				}
				if !bytes.Equal(b, want) {
					t.Errorf("%s differs from the parser's output; run go test -run TestGolden -update and review the diff:\n%s", gold, b)
				}
			})
		}
	}
}

func TestSummarize(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		tool    string
		input   map[string]any
		summary string
		changed []string
	}{
		{"write", map[string]any{"filePath": AppDir + "/src/a.ts", "content": long}, "src/a.ts", []string{"src/a.ts"}},
		{"write", map[string]any{"file_path": "rel/b.ts", "content": long}, "rel/b.ts", []string{"rel/b.ts"}},
		{"edit", map[string]any{"file_path": AppDir}, ".", []string{"."}},
		{"read", map[string]any{"filePath": "/etc/passwd"}, "/etc/passwd", nil},
		{"bash", map[string]any{"command": "cat <<'EOF' > a\nline\nEOF", "description": "d"}, "cat <<'EOF' > a line EOF", nil},
		{"bash", map[string]any{"command": long}, strings.Repeat("x", 199) + "…", nil},
		{"grep", map[string]any{"pattern": "TODO", "path": AppDir + "/src"}, "TODO in src", nil},
		{"glob", map[string]any{"pattern": "**/*.ts"}, "**/*.ts", nil},
		{"todowrite", map[string]any{"todos": []any{1, 2, 3}}, "3 todos", nil},
		{"webfetch", map[string]any{"url": "https://example.org/", "prompt": "p"}, "https://example.org/", nil},
		{"task", map[string]any{"description": "Find the tests", "prompt": long}, "Find the tests", nil},
		{"mcp__db__query", map[string]any{"sql": "select 1"}, `{"sql":"select 1"}`, nil},
		{"unknown", map[string]any{}, "", nil},
		{"apply_patch", map[string]any{"patchText": "*** Begin Patch\n*** Update File: " + AppDir + "/a.go\n*** Move to: b.go\n*** Delete File: c.go\n*** Update File: b.go\n*** End Patch"}, "a.go, b.go, c.go", []string{"a.go", "b.go", "c.go"}},
	}
	for _, tt := range tests {
		summary, changed := summarize(tt.tool, tt.input, AppDir)
		if summary != tt.summary || !slices.Equal(changed, tt.changed) {
			t.Errorf("summarize(%s, %.60v) = %q, %q; want %q, %q", tt.tool, tt.input, summary, changed, tt.summary, tt.changed)
		}
		if n := utf8.RuneCountInString(summary); n > inputLimit {
			t.Errorf("summary of %s has %d characters", tt.tool, n)
		}
	}
}

func TestCommandAndEnv(t *testing.T) {
	tests := []struct {
		a            Adapter
		model        string
		want         []string
		envKeys      []string
		name, binary string
	}{
		{OpenCode{}, "", []string{"opencode", "run", "--format", "json", "--auto", "--", "-make it pop"}, []string{"OPENCODE_DISABLE_AUTOUPDATE", "OPENCODE_DISABLE_LSP_DOWNLOAD", "OPENCODE_PERMISSION"}, "opencode", "opencode"},
		{OpenCode{}, "anthropic/claude-sonnet-4-5", []string{"opencode", "run", "--format", "json", "--auto", "--model", "anthropic/claude-sonnet-4-5", "--", "-make it pop"}, nil, "opencode", "opencode"},
		{Claude{}, "", []string{"claude", "-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions", "--", "-make it pop"}, []string{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_AUTOUPDATER"}, "claude", "claude"},
		{Claude{}, "sonnet", []string{"claude", "-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions", "--model", "sonnet", "--", "-make it pop"}, nil, "claude", "claude"},
	}
	for _, tt := range tests {
		if got := tt.a.Command("-make it pop", tt.model); !slices.Equal(got, tt.want) {
			t.Errorf("%s Command = %q, want %q", tt.a.Name(), got, tt.want)
		}
		if tt.a.Name() != tt.name || tt.a.Binary() != tt.binary {
			t.Errorf("Name, Binary = %s, %s", tt.a.Name(), tt.a.Binary())
		}
		env := tt.a.Env()
		for k, v := range env {
			if strings.Contains(k, "KEY") || strings.Contains(k, "TOKEN") || v == "" {
				t.Errorf("%s Env %s=%q: no secrets and no empty values", tt.a.Name(), k, v)
			}
		}
		if tt.envKeys != nil {
			keys := slices.Sorted(maps.Keys(env))
			if !slices.Equal(keys, tt.envKeys) {
				t.Errorf("%s Env keys = %q, want %q", tt.a.Name(), keys, tt.envKeys)
			}
		}
	}
	var perm map[string]string
	if err := json.Unmarshal([]byte(OpenCode{}.Env()["OPENCODE_PERMISSION"]), &perm); err != nil || perm["edit"] != "allow" || perm["bash"] != "allow" {
		t.Errorf("OPENCODE_PERMISSION = %v, %v", perm, err)
	}
}

func TestLookup(t *testing.T) {
	if !slices.IsSorted(Names()) || len(Names()) != 2 {
		t.Fatalf("Names = %q", Names())
	}
	for _, name := range Names() {
		a, ok := Lookup(name)
		if !ok || a.Name() != name {
			t.Errorf("Lookup(%q) = %v, %v", name, a, ok)
		}
	}
	if _, ok := Lookup("aider"); ok {
		t.Error("Lookup(aider) found an adapter")
	}
}

func TestRelPath(t *testing.T) {
	tests := []struct{ dir, p, want string }{
		{AppDir, AppDir + "/a/../b.txt", "b.txt"},
		{AppDir, AppDir + "x/y", AppDir + "x/y"},
		{AppDir, "./c/d", "c/d"},
		{"/", "/etc/hosts", "etc/hosts"},
		{AppDir, "", ""},
	}
	for _, tt := range tests {
		if got := relPath(tt.dir, tt.p); got != tt.want {
			t.Errorf("relPath(%q, %q) = %q, want %q", tt.dir, tt.p, got, tt.want)
		}
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
