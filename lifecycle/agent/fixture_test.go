package agent

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestFixtureResults states what each fixture must parse into, so that a
// careless -update cannot bless a wrong mapping. Every fixture needs an
// entry here.
func TestFixtureResults(t *testing.T) {
	checks := map[string]func(t *testing.T, g golden){
		"claude/basic": func(t *testing.T, g golden) {
			// modelUsage covers the Haiku title call that result.usage leaves out.
			wantUsage(t, g.Result.Usage, Usage{InputTokens: 30 + 1410, OutputTokens: 638 + 78, CacheReadTokens: 68211, CacheWriteTokens: 3901, CostUSD: 0.0591873})
			wantResult(t, g.Result, "Done. `index.html` now shows a todo list page, and `package.json` is marked as an ES module.", "")
			wantStrings(t, "changed files", changedFiles(g), "index.html", "package.json")
			wantCounts(t, g, map[string]int{"tool/error": 1, TypeLog: 1, TypeRaw: 0, TypeError: 0})
		},
		"claude/subagent": func(t *testing.T, g golden) {
			// The whole run's tokens: the main loop's and the subagent's, not
			// result.usage's 9/412 of the main loop alone.
			wantUsage(t, g.Result.Usage, Usage{InputTokens: 9 + 2210, OutputTokens: 412 + 530, CacheReadTokens: 40213 + 18044, CacheWriteTokens: 5120 + 3310, CostUSD: 0.049})
			if m := g.Result.Usage.Models; len(m) != 2 || m["claude-haiku-4-5-20251001"].OutputTokens != 530 {
				t.Errorf("usage by model = %+v", m)
			}
			wantResult(t, g.Result, "Done: index.html now shows a todo list heading and an empty list.", "")
			if g.Result.Subagents != 1 {
				t.Errorf("subagents = %d", g.Result.Subagents)
			}
			wantSubagentRun(t, g, "toolu_01Sub7AgentCallKq2Xw9Lm4", []string{"Found index.html and package.json", "Read index.html: one heading, no script"})
			for _, ev := range g.Events {
				if ev.Type == TypeTool && ev.Tool == "edit" && ev.Subagent != nil {
					t.Errorf("the main agent's edit is attributed to a subagent: %+v", ev)
				}
			}
			if p := patchOf(g, "index.html"); !strings.Contains(p, "\n+<h1>Todo</h1>\n") {
				t.Errorf("patch of index.html = %q", p)
			}
		},
		"claude/interrupted": func(t *testing.T, g golden) {
			wantFailure(t, g, FailureAborted, sentence(FailureAborted))
		},
		"claude/max_turns": func(t *testing.T, g golden) {
			wantFailure(t, g, FailureMaxTurns, sentence(FailureMaxTurns)+" (2)")
		},
		"claude/max_output_recovered": func(t *testing.T, g golden) {
			wantResult(t, g.Result, "Wrote src/TodoList.jsx.", "")
			wantCounts(t, g, map[string]int{TypeWarning: 1, TypeError: 0})
			w := g.Events[slices.IndexFunc(g.Events, func(e Event) bool { return e.Type == TypeWarning })]
			if w.Reason != FailureMaxOutputTokens || !strings.Contains(w.Text, "exceeded the 32000 output token maximum") {
				t.Errorf("warning = %+v, want the CLI's sentence about max_output_tokens", w)
			}
		},
		"claude/auth_failure": func(t *testing.T, g golden) {
			wantFailure(t, g, FailureAuth, "Not logged in · Please run /login")
		},
		"claude/permission_denied": func(t *testing.T, g golden) {
			wantResult(t, g.Result, "I couldn't install the CLI or change .bashrc: both need a permission this run does not have.", "")
			if g.Result.PermissionDenials != 3 {
				t.Errorf("permission denials = %d", g.Result.PermissionDenials)
			}
			wantStrings(t, "denied tools", toolsOf(g, TypePermissionDenied), "bash", "write", "webfetch")
		},
		"claude/edit_patch": func(t *testing.T, g golden) {
			wantStrings(t, "changed files", changedFiles(g), "package.json", "src/main.js", "README.md")
			if p := patchOf(g, "package.json"); !strings.HasPrefix(p, "--- a/package.json\n+++ b/package.json\n@@ -1,4 +1,5 @@\n") || !strings.Contains(p, "\n+  \"type\": \"module\"\n") {
				t.Errorf("patch of package.json = %q", p)
			}
			if p := patchOf(g, "src/main.js"); strings.Count(p, "\n@@ ") != 2 {
				t.Errorf("patch of src/main.js = %q, want two hunks", p)
			}
			if p := patchOf(g, "README.md"); p != "" {
				t.Errorf("a created file got a patch: %q", p)
			}
		},
		"claude/status_hooks": func(t *testing.T, g golden) {
			wantResult(t, g.Result, "The build passes.", "")
			// Only the line of an unknown type stays raw; the line that is not JSON is a log.
			wantCounts(t, g, map[string]int{TypeRaw: 1, TypeLog: 1, TypeWarning: 3, "status/hook": 3})
			wantStrings(t, "tools", toolsOf(g, TypeTool), "advisor", "advisor", "bash", "bash")
		},
		"opencode/basic": func(t *testing.T, g golden) {
			wantUsage(t, g.Result.Usage, Usage{InputTokens: 7952 + 412 + 203, OutputTokens: 118 + 44 + 731 + 64, CacheReadTokens: 7680 + 8080, CacheWriteTokens: 780 + 671, CostUSD: 0.0264507 + 0.0391245 + 0.0102961})
			wantResult(t, g.Result, "Done. I created `index.html` with a todo list page, added `src/App.tsx` and `src/styles.css`, and marked the package as an ES module.", "")
			wantStrings(t, "changed files", changedFiles(g), "index.html", "src/App.tsx", "src/styles.css", "package.json")
			wantCounts(t, g, map[string]int{"tool/error": 1, TypeLog: 1, TypeRaw: 1})
		},
		"opencode/subagent": func(t *testing.T, g golden) {
			wantResult(t, g.Result, `The todos are stored in src/store.js, in localStorage under "todos".`, "")
			i := slices.IndexFunc(g.Events, func(e Event) bool { return e.Type == TypeSubagentFinished })
			if g.Result.Subagents != 1 || i < 0 || g.Events[i].Subagent.Type != "general" || strings.Contains(g.Events[i].Text, "task_metadata") {
				t.Errorf("subagents = %d, finished event %d", g.Result.Subagents, i)
			}
		},
		"opencode/errors_1x": func(t *testing.T, g golden) {
			wantFailure(t, g, FailureUnknown, "Cannot read properties of undefined (reading 'providerID')")
			if g.Result.ErrorRef != "err_01K2Q8V4ZC7M3Y5W1N6P9R0T2X" {
				t.Errorf("error ref = %q", g.Result.ErrorRef)
			}
			wantCounts(t, g, map[string]int{TypeLog: 2})
		},
		"opencode/v2_run": func(t *testing.T, g golden) {
			wantResult(t, g.Result, "The heading now says Todo.", "")
			wantCounts(t, g, map[string]int{TypeWarning: 1, TypeError: 0, "tool/error": 1})
			wantStrings(t, "tools", toolsOf(g, TypeTool), "bash", "edit", "tool")
			if p := patchOf(g, "src/App.jsx"); !strings.Contains(p, "\n+  return <h1>Todo</h1>\n") {
				t.Errorf("patch of src/App.jsx = %q", p)
			}
		},
		"opencode/v2_interrupted": func(t *testing.T, g golden) {
			wantFailure(t, g, FailureAborted, "Session interrupted: shutdown")
		},
		"opencode/v2_permission": func(t *testing.T, g golden) {
			wantResult(t, g.Result, "I can't read /etc/hosts from this run, so I left the hosts file alone.", "")
			wantStrings(t, "denied", toolsOf(g, TypePermissionDenied), "external_directory")
		},
	}
	for _, name := range Names() {
		a, _ := Lookup(name)
		for _, file := range fixtures(t, name) {
			key := name + "/" + strings.TrimSuffix(filepath.Base(file), ".jsonl")
			t.Run(key, func(t *testing.T) {
				check, ok := checks[key]
				if !ok {
					t.Fatalf("no expectations for %s", file)
				}
				g := parseFile(t, a, file)
				if first := g.Events[0]; first.Type != TypeStatus || first.Phase != "session" || g.Result.SessionID == "" {
					t.Errorf("first event = %+v, session %q; want the session status", first, g.Result.SessionID)
				}
				check(t, g)
			})
		}
	}
}

// wantSubagentRun checks a subagent's events: started, then its progress in
// order, then finished, and every event between that came from it says so.
func wantSubagentRun(t *testing.T, g golden, id string, progress []string) {
	t.Helper()
	start := slices.IndexFunc(g.Events, func(e Event) bool { return e.Type == TypeSubagentStarted })
	end := slices.IndexFunc(g.Events, func(e Event) bool { return e.Type == TypeSubagentFinished })
	if start < 0 || end < start || g.Events[start].Subagent.ID != id || g.Events[end].Subagent.ID != id || g.Events[end].Status != SubagentCompleted {
		t.Fatalf("subagent started at %d, finished at %d", start, end)
	}
	var got []string
	tools := 0
	for _, ev := range g.Events[start+1 : end] {
		switch {
		case ev.Subagent == nil || ev.Subagent.ID != id:
			t.Errorf("event inside the subagent's run without it: %+v", ev)
		case ev.Type == TypeSubagentProgress:
			got = append(got, ev.Text)
		case ev.Type == TypeTool:
			tools++
		}
	}
	if !slices.Equal(got, progress) || tools == 0 {
		t.Errorf("progress = %q (and %d tool events), want %q", got, tools, progress)
	}
}

func wantFailure(t *testing.T, g golden, kind, text string) {
	t.Helper()
	r := g.Result
	if !r.Failed || r.FailureKind != kind || r.Error != text {
		t.Errorf("result failed %v, kind %q, error %q; want %q, %q", r.Failed, r.FailureKind, r.Error, kind, text)
	}
	var errs []Event
	for _, ev := range g.Events {
		if ev.Type == TypeError {
			errs = append(errs, ev)
		}
	}
	if len(errs) != 1 || errs[0].Reason != kind || !strings.HasPrefix(errs[0].Text, text) {
		t.Errorf("error events = %+v, want one of kind %s", errs, kind)
	}
	if strings.Contains(r.Error, "[ede_diagnostic]") {
		t.Errorf("the error is an internal diagnostic: %q", r.Error)
	}
}

func wantResult(t *testing.T, r Result, final, errText string) {
	t.Helper()
	if r.FinalMessage != final || r.Failed != (errText != "") || r.Error != errText {
		t.Errorf("result: final %q, failed %v, error %q; want %q, %q", r.FinalMessage, r.Failed, r.Error, final, errText)
	}
}

func wantUsage(t *testing.T, got, want Usage) {
	t.Helper()
	if d := got.CostUSD - want.CostUSD; d > 1e-9 || d < -1e-9 {
		t.Errorf("cost = %v, want %v", got.CostUSD, want.CostUSD)
	}
	got.CostUSD, got.Models, want.Models = want.CostUSD, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("usage:\n got %+v\nwant %+v", got, want)
	}
}

func wantStrings(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// wantCounts checks the number of events of some kinds: a type, or
// "type/status-or-phase".
func wantCounts(t *testing.T, g golden, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, ev := range g.Events {
		got[ev.Type]++
		got[ev.Type+"/"+ev.Status+ev.Phase]++
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d %s events, want %d", got[k], k, n)
		}
	}
}

func changedFiles(g golden) []string {
	var files []string
	for _, ev := range g.Events {
		if ev.Type == TypeFileChanged {
			files = append(files, ev.Path)
		}
	}
	return files
}

func toolsOf(g golden, typ string) []string {
	var tools []string
	for _, ev := range g.Events {
		if ev.Type == typ {
			tools = append(tools, ev.Tool)
		}
	}
	return tools
}

func patchOf(g golden, path string) string {
	for _, ev := range g.Events {
		if ev.Type == TypeFileChanged && ev.Path == path {
			return ev.Patch
		}
	}
	return "(no file_changed event)"
}
