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
	"reflect"
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
	g.Result = p.Result()
	return g
}

// TestGolden parses the recorded streams in testdata and compares the
// events, in order, and the result with testdata/<name>.golden.json.
// Run with -update to rewrite the golden files after a deliberate change.
func TestGolden(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			a, _ := Lookup(name)
			got := parseFile(t, a, filepath.Join("testdata", name+".jsonl"))
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, '\n')
			file := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(file, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("%s differs from the parser's output; run go test -run TestGolden -update and review the diff:\n%s", file, b)
			}
		})
	}
}

// TestFixtureResults states what the golden files must say, so that a
// careless -update cannot bless a wrong mapping.
func TestFixtureResults(t *testing.T) {
	tests := []struct {
		name       string
		result     Result
		files      []string // file_changed paths, in order
		toolErrors int
		raws       int // the unknown event and the line that is not JSON
	}{
		{
			name: "opencode",
			result: Result{
				FinalMessage: "Done. I created `index.html` with a todo list page, added `src/App.tsx` and `src/styles.css`, and marked the package as an ES module.",
				Usage:        Usage{InputTokens: 7952 + 412 + 203, OutputTokens: 118 + 44 + 731 + 64, CacheReadTokens: 7680 + 8080, CacheWriteTokens: 780 + 671, CostUSD: 0.0264507 + 0.0391245 + 0.0102961},
				SessionID:    "ses_1a2b3c4d5effe9Xk2Lq7RtWm0s",
			},
			files:      []string{"index.html", "src/App.tsx", "src/styles.css", "package.json"},
			toolErrors: 1,
			raws:       2,
		},
		{
			name: "claude",
			result: Result{
				FinalMessage: "Done. `index.html` now shows a todo list page, and `package.json` is marked as an ES module.",
				Usage:        Usage{InputTokens: 30, OutputTokens: 638, CacheReadTokens: 68211, CacheWriteTokens: 3901, CostUSD: 0.0591873},
				SessionID:    "3f9c2e1a-7b4d-4c8e-9a1f-2d6b5e8c0a47",
			},
			files:      []string{"index.html", "package.json"},
			toolErrors: 1,
			raws:       2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := Lookup(tt.name)
			g := parseFile(t, a, filepath.Join("testdata", tt.name+".jsonl"))
			got := g.Result
			if d := got.Usage.CostUSD - tt.result.Usage.CostUSD; d > 1e-9 || d < -1e-9 {
				t.Errorf("cost = %v, want %v", got.Usage.CostUSD, tt.result.Usage.CostUSD)
			}
			got.Usage.CostUSD = tt.result.Usage.CostUSD
			if got != tt.result {
				t.Errorf("result:\n got %+v\nwant %+v", got, tt.result)
			}
			var files []string
			var toolErrors, raws int
			for _, ev := range g.Events {
				switch {
				case ev.Type == TypeFileChanged:
					files = append(files, ev.Path)
				case ev.Type == TypeTool && ev.Status == ToolError:
					toolErrors++
				case ev.Type == TypeRaw:
					raws++
				}
			}
			if !slices.Equal(files, tt.files) {
				t.Errorf("changed files = %q, want %q", files, tt.files)
			}
			if toolErrors != tt.toolErrors || raws != tt.raws {
				t.Errorf("tool errors, raw events = %d, %d; want %d, %d", toolErrors, raws, tt.toolErrors, tt.raws)
			}
			if first := g.Events[0]; first.Type != TypeStatus || first.Phase != "session" {
				t.Errorf("first event = %+v, want the session status", first)
			}
			if last := g.Events[len(g.Events)-1]; last.Type != TypeUsage {
				t.Errorf("last event = %+v, want usage", last)
			}
		})
	}
}

// parseLines runs lines through a new parser of a.
func parseLines(a Adapter, lines ...string) ([]Event, Result) {
	p := a.NewParser()
	var evs []Event
	for _, l := range lines {
		evs = append(evs, p.Parse([]byte(l))...)
	}
	return evs, p.Result()
}

func TestOpenCodeEvents(t *testing.T) {
	const sid = `"sessionID":"ses_x"`
	session := Event{Type: TypeStatus, Phase: "session", Text: "session ses_x"}
	tests := []struct {
		name   string
		lines  []string
		want   []Event
		result Result
	}{
		{
			name: "pending and running shown once per input",
			lines: []string{
				`{"type":"tool_use",` + sid + `,"part":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"pending","input":{},"raw":""}}}`,
				`{"type":"tool_use",` + sid + `,"part":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"running","input":{"command":"npm install"},"time":{"start":1}}}}`,
				`{"type":"tool_use",` + sid + `,"part":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"running","input":{"command":"npm install"},"title":"npm install","time":{"start":1}}}}`,
				`{"type":"tool_use",` + sid + `,"part":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"completed","input":{"command":"npm install"},"output":"ok","title":"","metadata":{},"time":{"start":1,"end":2}}}}`,
			},
			want: []Event{
				session,
				{Type: TypeTool, Tool: "bash", Status: ToolRunning},
				{Type: TypeTool, Tool: "bash", Input: "npm install", Status: ToolRunning},
				{Type: TypeTool, Tool: "bash", Input: "npm install", Status: ToolCompleted},
			},
			result: Result{SessionID: "ses_x"},
		},
		{
			name: "a multiedit outside the app dir and a failed write",
			lines: []string{
				`{"type":"tool_use","part":{"type":"tool","tool":"multiedit","callID":"c2","state":{"status":"completed","input":{"filePath":"/home/sandbox/.bashrc","edits":[]},"output":"","title":"","metadata":{},"time":{"start":1,"end":2}}}}`,
				`{"type":"tool_use","part":{"type":"tool","tool":"write","callID":"c3","state":{"status":"error","input":{"filePath":"/home/sandbox/workspace/app/a.txt","content":"x"},"error":"EACCES: permission denied","time":{"start":1,"end":2}}}}`,
			},
			want: []Event{
				{Type: TypeTool, Tool: "multiedit", Input: "/home/sandbox/.bashrc", Status: ToolCompleted},
				{Type: TypeFileChanged, Path: "/home/sandbox/.bashrc"},
				{Type: TypeTool, Tool: "write", Input: "a.txt", Status: ToolError, Text: "EACCES: permission denied"},
			},
		},
		{
			name: "error shapes; the first is the cause",
			lines: []string{
				`{"type":"error",` + sid + `,"error":{"name":"ProviderAuthError","data":{"providerID":"anthropic","message":"API key is missing"}}}`,
				`{"type":"error",` + sid + `,"error":{"type":"provider.rate-limit","message":"Error 429: slow down","status":429}}`,
				`{"type":"error",` + sid + `,"error":"ollama refused connection"}`,
				`{"type":"error",` + sid + `,"error":{"name":"UnknownError"}}`,
			},
			want: []Event{
				session,
				{Type: TypeError, Text: "ProviderAuthError: API key is missing"},
				{Type: TypeError, Text: "provider.rate-limit: Error 429: slow down"},
				{Type: TypeError, Text: "ollama refused connection"},
				{Type: TypeError, Text: "UnknownError"},
			},
			result: Result{Failed: true, Error: "ProviderAuthError: API key is missing", SessionID: "ses_x"},
		},
		{
			name: "reasoning, texts of one step, done with rejected permissions",
			lines: []string{
				`{"type":"step_start","part":{"type":"step-start"}}`,
				`{"type":"text","part":{"type":"text","text":"old answer"}}`,
				`{"type":"step_start","part":{"type":"step-start"}}`,
				`{"type":"reasoning","part":{"type":"reasoning","text":"think\n\nhard"}}`,
				`{"type":"text","part":{"type":"text","text":"one"}}`,
				`{"type":"text","part":{"type":"text","text":""}}`,
				`{"type":"text","part":{"type":"text","text":"two"}}`,
				`{"type":"done","reason":"idle","rejected":["external_directory"]}`,
			},
			want: []Event{
				{Type: TypeStatus, Phase: "step"},
				{Type: TypeMessage, Role: "assistant", Text: "old answer"},
				{Type: TypeStatus, Phase: "step"},
				{Type: TypeStatus, Phase: "thinking", Text: "think hard"},
				{Type: TypeMessage, Role: "assistant", Text: "one"},
				{Type: TypeMessage, Role: "assistant", Text: "two"},
				{Type: TypeStatus, Phase: "idle", Text: "rejected permissions: external_directory"},
			},
			result: Result{FinalMessage: "one\n\ntwo"},
		},
		{
			name: "known types without their part, and JSON that is no object, stay raw",
			lines: []string{
				`{"type":"text"}`,
				`{"type":"tool_use","part":{"type":"tool","tool":"bash"}}`,
				`[1,2]`,
				`   `,
			},
			want: []Event{
				{Type: TypeRaw, Raw: json.RawMessage(`{"type":"text"}`)},
				{Type: TypeRaw, Raw: json.RawMessage(`{"type":"tool_use","part":{"type":"tool","tool":"bash"}}`)},
				{Type: TypeRaw, Raw: json.RawMessage(`[1,2]`)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, res := parseLines(OpenCode{}, tt.lines...)
			if !reflect.DeepEqual(evs, tt.want) {
				t.Errorf("events:\n got %s\nwant %s", jsonOf(evs), jsonOf(tt.want))
			}
			if res != tt.result {
				t.Errorf("result:\n got %+v\nwant %+v", res, tt.result)
			}
		})
	}
}

func TestClaudeEvents(t *testing.T) {
	tests := []struct {
		name   string
		lines  []string
		want   []Event
		result Result
	}{
		{
			// Claude Code 2.1.x with no key: a synthetic assistant message,
			// then a result whose subtype still says success.
			name: "not logged in",
			lines: []string{
				`{"type":"system","subtype":"init","session_id":"s1","model":"claude-sonnet-4-5","apiKeySource":"none"}`,
				`{"type":"assistant","message":{"id":"a","model":"<synthetic>","role":"assistant","content":[{"type":"text","text":"Not logged in · Please run /login"}]},"parent_tool_use_id":null,"session_id":"s1","error":"authentication_failed"}`,
				`{"type":"result","subtype":"success","is_error":true,"result":"Not logged in · Please run /login","session_id":"s1","total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0},"terminal_reason":"api_error"}`,
			},
			want: []Event{
				{Type: TypeStatus, Phase: "session", Text: "session s1, model claude-sonnet-4-5"},
				{Type: TypeError, Text: "Not logged in · Please run /login"},
				{Type: TypeUsage, Usage: &Usage{}},
			},
			result: Result{Failed: true, Error: "Not logged in · Please run /login", SessionID: "s1"},
		},
		{
			name: "max turns with errors listed",
			lines: []string{
				`{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"working"}]},"parent_tool_use_id":null}`,
				`{"type":"result","subtype":"error_max_turns","is_error":true,"session_id":"s2","usage":{"input_tokens":5,"output_tokens":6,"cache_read_input_tokens":7,"cache_creation_input_tokens":8},"total_cost_usd":0.5,"errors":["reached max turns (3)"]}`,
			},
			want: []Event{
				{Type: TypeMessage, Role: "assistant", Text: "working"},
				{Type: TypeUsage, Usage: &Usage{InputTokens: 5, OutputTokens: 6, CacheReadTokens: 7, CacheWriteTokens: 8, CostUSD: 0.5}},
				{Type: TypeError, Text: "reached max turns (3)"},
			},
			result: Result{FinalMessage: "working", Usage: Usage{InputTokens: 5, OutputTokens: 6, CacheReadTokens: 7, CacheWriteTokens: 8, CostUSD: 0.5}, Failed: true, Error: "reached max turns (3)", SessionID: "s2"},
		},
		{
			name: "a subagent's text is not the answer; blocks of one message join",
			lines: []string{
				`{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"first"}]},"parent_tool_use_id":null}`,
				`{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"second"}]},"parent_tool_use_id":null}`,
				`{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"from the subagent"}]},"parent_tool_use_id":"toolu_task"}`,
			},
			want: []Event{
				{Type: TypeMessage, Role: "assistant", Text: "first"},
				{Type: TypeMessage, Role: "assistant", Text: "second"},
				{Type: TypeMessage, Role: "assistant", Text: "from the subagent"},
			},
			result: Result{FinalMessage: "first\n\nsecond"},
		},
		{
			name: "notebook edit, array tool result, unknown blocks, a result for no call",
			lines: []string{
				`{"type":"assistant","message":{"id":"m1","content":[{"type":"tool_use","id":"t1","name":"NotebookEdit","input":{"notebook_path":"/home/sandbox/workspace/app/nb.ipynb","new_source":"print(1)"}},{"type":"image","source":{}}]}}`,
				`{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"Updated cell"}]},{"type":"tool_result","tool_use_id":"t9","content":[{"type":"text","text":"no\nsuch"}],"is_error":true}]}}`,
				`{"type":"user","message":{"role":"user","content":"[Request interrupted by user]"}}`,
				`{"type":"system","subtype":"hook_started","hook_event":"PreToolUse"}`,
			},
			want: []Event{
				{Type: TypeTool, Tool: "notebookedit", Input: "nb.ipynb", Status: ToolRunning},
				{Type: TypeRaw, Raw: json.RawMessage(`{"source":{},"type":"image"}`)},
				{Type: TypeTool, Tool: "notebookedit", Input: "nb.ipynb", Status: ToolCompleted},
				{Type: TypeFileChanged, Path: "nb.ipynb"},
				{Type: TypeTool, Status: ToolError, Text: "no such"},
				{Type: TypeMessage, Role: "user", Text: "[Request interrupted by user]"},
				{Type: TypeRaw, Raw: json.RawMessage(`{"type":"system","subtype":"hook_started","hook_event":"PreToolUse"}`)},
			},
		},
		{
			name: "fields of other types read as absent",
			lines: []string{
				`{"type":"result","subtype":"success","is_error":"no","result":5,"total_cost_usd":"1","usage":{"input_tokens":-3,"output_tokens":1e30}}`,
				`{"type":"assistant","message":{"content":"plain"}}`,
				`{"type":"assistant"}`,
			},
			want: []Event{
				{Type: TypeUsage, Usage: &Usage{}},
				{Type: TypeMessage, Role: "assistant", Text: "plain"},
				{Type: TypeRaw, Raw: json.RawMessage(`{"type":"assistant"}`)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, res := parseLines(Claude{}, tt.lines...)
			if !reflect.DeepEqual(evs, tt.want) {
				t.Errorf("events:\n got %s\nwant %s", jsonOf(evs), jsonOf(tt.want))
			}
			if res != tt.result {
				t.Errorf("result:\n got %+v\nwant %+v", res, tt.result)
			}
		})
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

// FuzzParse feeds each parser the input, line by line, and checks that no
// line is lost or mangled: every event has a parser's type, raw events hold
// valid JSON, summaries stay short, and everything encodes.
func FuzzParse(f *testing.F) {
	for _, name := range Names() {
		b, err := os.ReadFile(filepath.Join("testdata", name+".jsonl"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		for line := range bytes.Lines(b) {
			f.Add(line)
		}
	}
	f.Add([]byte("\xff\xfe{\"type\":\"text\"}\n{\"type\":\"assistant\",\"message\":{\"content\":[null,1,{\"type\":\"tool_result\"}]}}"))
	types := map[string]bool{TypeStatus: true, TypeMessage: true, TypeTool: true, TypeFileChanged: true, TypeError: true, TypeUsage: true, TypeRaw: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range Names() {
			a, _ := Lookup(name)
			p := a.NewParser()
			for line := range bytes.Lines(data) {
				for _, ev := range p.Parse(line) {
					if !types[ev.Type] {
						t.Fatalf("%s: event type %q", name, ev.Type)
					}
					if ev.Type == TypeRaw && !json.Valid(ev.Raw) {
						t.Fatalf("%s: raw event holds invalid JSON %q", name, ev.Raw)
					}
					if utf8.RuneCountInString(ev.Input) > inputLimit {
						t.Fatalf("%s: input summary of %d characters", name, utf8.RuneCountInString(ev.Input))
					}
					if _, err := json.Marshal(ev); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				}
			}
			if _, err := json.Marshal(p.Result()); err != nil {
				t.Fatalf("%s: result: %v", name, err)
			}
		}
	})
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
