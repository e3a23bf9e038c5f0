package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestArgs runs the fake's command line handling: what it accepts as the
// real `claude -p` does, and what it refuses.
func TestArgs(t *testing.T) {
	t.Chdir(t.TempDir())
	keyed := func(k string) string {
		return map[string]string{"ANTHROPIC_API_KEY": "sk-test", "FAKEAGENT_STEP_MS": "0"}[k]
	}
	adapter := []string{"-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions", "--"}
	tests := []struct {
		name   string
		args   []string
		getenv func(string) string
		euid   int
		code   int
		stdout string // a substring
		stderr string
	}{
		{"adapter's argv", append(adapter, "-hi"), keyed, 1000, 0, `"permission_denials":[]`, ""},
		{"bypass as root", append(adapter, "hi"), keyed, 0, 1, "", "cannot be used with root/sudo privileges"},
		{"bypass as root in a sandbox", append(adapter, "hi"), func(k string) string {
			if k == "IS_SANDBOX" {
				return "1"
			}
			return keyed(k)
		}, 0, 0, `"is_error":false`, ""},
		{"acceptEdits writes", []string{"-p", "hi", "--permission-mode=acceptEdits", "--output-format", "json"}, keyed, 1000, 0, `"result":"Created index.html and notes.md."`, ""},
		{"default mode is denied writes", []string{"-p", "--output-format", "stream-json", "--verbose", "hi"}, keyed, 1000, 0, `"tool_name":"Write"`, ""},
		{"text output", []string{"--print", "--model", "opus", "hi", "--permission-mode", "bypassPermissions"}, keyed, 1000, 0, "Created index.html and notes.md.\n", ""},
		{"stream-json needs --verbose", []string{"-p", "--output-format", "stream-json", "hi"}, keyed, 1000, 1, "", "requires --verbose"},
		{"unknown flag", []string{"-p", "--yolo", "hi"}, keyed, 1000, 2, "", "unknown option '--yolo'"},
		{"bad permission mode", []string{"-p", "--permission-mode", "yes", "hi"}, keyed, 1000, 2, "", "Allowed choices"},
		{"two prompts", []string{"-p", "a", "b"}, keyed, 1000, 2, "", "too many arguments"},
		{"interactive", []string{"hi"}, keyed, 1000, 2, "", "no interactive mode"},
		{"no prompt", []string{"-p"}, keyed, 1000, 1, "", "Input must be provided"},
		{"no key", append(adapter, "hi"), func(string) string { return "" }, 1000, 1, `"error":"authentication_failed"`, ""},
		{"version", []string{"-v"}, keyed, 1000, 0, "(Claude Code)", ""},
		{"subagent lines", append(adapter, "subagent"), keyed, 1000, 0, `"subtype":"task_progress"`, ""},
		{"subagent on its own model", append(adapter, "subagent"), keyed, 1000, 0, `"claude-haiku-4-5-20251001":{"inputTokens":1800`, ""},
		{"a cut answer", append(adapter, "recover"), keyed, 1000, 0, `"error":"max_output_tokens","error_details":"Claude's response exceeded`, ""},
		{"a refused write", append(adapter, "deny"), keyed, 1000, 0, `"subtype":"permission_denied","tool_name":"Write"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, tt.getenv, tt.euid, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stdout %q\nstderr %q\nwant %q and %q", stdout.String(), stderr.String(), tt.stdout, tt.stderr)
			}
			if strings.Contains(stdout.String()+stderr.String(), "sk-test") {
				t.Error("the key was printed")
			}
		})
	}
}
