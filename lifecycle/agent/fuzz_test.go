package agent

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds each parser the input, line by line, and checks that no
// line is lost or mangled: every event has a parser's type, raw events hold
// valid JSON, summaries, patches and logs stay bounded, and everything
// encodes. The seed corpus is every fixture, whole and line by line.
func FuzzParse(f *testing.F) {
	for _, name := range Names() {
		for _, file := range fixtures(f, name) {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
			for line := range bytes.Lines(b) {
				f.Add(line)
			}
		}
	}
	f.Add([]byte("\xff\xfe{\"type\":\"text\"}\n{\"type\":\"assistant\",\"message\":{\"content\":[null,1,{\"type\":\"tool_result\"}]}}"))
	f.Add([]byte(`{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"a","is_error":true}]},"tool_result_meta":{"x":"permission_denied"}}`))
	f.Add([]byte(`{"type":"result","modelUsage":{"a":{"inputTokens":9007199254740992},"b":{"inputTokens":9007199254740992}},"is_error":true,"terminal_reason":"x"}`))
	types := map[string]bool{
		TypeStatus: true, TypeMessage: true, TypeTool: true, TypeFileChanged: true, TypeSubagentStarted: true,
		TypeSubagentProgress: true, TypeSubagentFinished: true, TypePermissionDenied: true, TypeWarning: true,
		TypeError: true, TypeUsage: true, TypeLog: true, TypeRaw: true,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range Names() {
			a, _ := Lookup(name)
			p := a.NewParser()
			check := func(ev Event) {
				if !types[ev.Type] {
					t.Fatalf("%s: event type %q", name, ev.Type)
				}
				if ev.Type == TypeRaw && !json.Valid(ev.Raw) {
					t.Fatalf("%s: raw event holds invalid JSON %q", name, ev.Raw)
				}
				if n := utf8.RuneCountInString(ev.Input); n > inputLimit {
					t.Fatalf("%s: input summary of %d characters", name, n)
				}
				if n := utf8.RuneCountInString(ev.Tool + ev.Phase + ev.Reason); n > 2*inputLimit {
					t.Fatalf("%s: tool, phase and reason of %d characters", name, n)
				}
				if len(ev.Patch) > patchLimit {
					t.Fatalf("%s: patch of %d bytes", name, len(ev.Patch))
				}
				if ev.Type == TypeLog && utf8.RuneCountInString(ev.Text) > logLimit {
					t.Fatalf("%s: log line of %d characters", name, utf8.RuneCountInString(ev.Text))
				}
				if s := ev.Subagent; s != nil && (utf8.RuneCountInString(s.ID) > inputLimit || utf8.RuneCountInString(s.Description) > inputLimit) {
					t.Fatalf("%s: subagent %+v not cut", name, s)
				}
				if u := ev.Usage; u != nil && (u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadTokens < 0 || u.CacheWriteTokens < 0) {
					t.Fatalf("%s: negative usage %+v", name, u)
				}
				if _, err := json.Marshal(ev); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			for line := range bytes.Lines(data) {
				for _, ev := range p.Parse(line) {
					check(ev)
				}
			}
			for _, ev := range p.(Finisher).Finish() {
				check(ev)
			}
			res := p.Result()
			if res.Failed != (res.FailureKind != "") || res.Failed && res.Error == "" {
				t.Fatalf("%s: result fails without a kind or a sentence: %+v", name, res)
			}
			if _, err := json.Marshal(res); err != nil {
				t.Fatalf("%s: result: %v", name, err)
			}
		}
	})
}

func TestPatchBounds(t *testing.T) {
	long := strings.Repeat("y", 300)
	var lines []any
	for range 200 {
		lines = append(lines, "+"+long)
	}
	p := structuredPatch("a.txt", []any{map[string]any{"oldStart": 1.0, "oldLines": 0.0, "newStart": 1.0, "newLines": 200.0, "lines": lines}})
	if len(p) > patchLimit || !strings.HasSuffix(p, cutNote) || !strings.HasPrefix(p, "--- a/a.txt\n+++ b/a.txt\n@@ -1,0 +1,200 @@\n+yyy") {
		t.Errorf("patch of %d bytes, cut: %v, head %.60q", len(p), strings.HasSuffix(p, cutNote), p)
	}
	if structuredPatch("a.txt", nil) != "" || structuredPatch("a.txt", []any{"x", map[string]any{}}) != "" {
		t.Error("hunks that are not hunks made a patch")
	}
	if got := clipPatch("@@ -1 +1 @@\n-a\n+b"); got != "@@ -1 +1 @@\n-a\n+b\n" {
		t.Errorf("clipPatch = %q", got)
	}
	if got := clipPatch(strings.Repeat("x\n", patchLimit)); len(got) > patchLimit || !strings.HasSuffix(got, cutNote) {
		t.Errorf("clipPatch of a huge diff: %d bytes", len(got))
	}
}

func TestPlainAndInternalNotes(t *testing.T) {
	if got := plain([]byte("\x1b[93m\x1b[1m! \x1b[0mwarn\x07ing\x1b]x\tend  ")); got != "! warningx\tend" {
		t.Errorf("plain = %q", got)
	}
	for s, want := range map[string]bool{"[ede_diagnostic] x": true, "[x] y": true, "[Request interrupted by user]": false, "[] a": false, "plain": false} {
		if internalNote(s) != want {
			t.Errorf("internalNote(%q) = %v", s, !want)
		}
	}
}
