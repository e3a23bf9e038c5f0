package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestArgs runs the fake's command line handling: what it accepts as the
// real `opencode run` does, and what it refuses.
func TestArgs(t *testing.T) {
	t.Chdir(t.TempDir())
	keyed := func(k string) string {
		if k == "OPENAI_API_KEY" {
			return "sk-test"
		}
		return map[string]string{"FAKEAGENT_STEP_MS": "0"}[k]
	}
	tests := []struct {
		name   string
		args   []string
		getenv func(string) string
		code   int
		stdout string // a substring
		stderr string
	}{
		{"adapter's argv", []string{"run", "--format", "json", "--auto", "--", "-hi"}, keyed, 0, `"type":"step_finish"`, ""},
		{"= forms and positionals around flags", []string{"run", "make", "--format=json", "-m", "openai/gpt-5.1", "it"}, keyed, 0, `"text":"Created index.html and notes.md."`, ""},
		{"default format prints text", []string{"run", "hi"}, keyed, 0, "Created index.html and notes.md.", ""},
		{"version", []string{"--version"}, keyed, 0, "fakeagent", ""},
		{"unknown flag", []string{"run", "--bogus", "hi"}, keyed, 2, "", "unknown option '--bogus'"},
		{"missing value", []string{"run", "hi", "--model"}, keyed, 2, "", "argument missing"},
		{"bad format", []string{"run", "--format", "yaml", "hi"}, keyed, 2, "", "Choices"},
		{"not run", []string{"serve"}, keyed, 2, "", "unknown command"},
		{"no message", []string{"run", "--format", "json"}, keyed, 1, "", "You must provide a message"},
		{"no key for the model's provider", []string{"run", "--format", "json", "--model", "anthropic/claude-sonnet-4-5", "hi"}, keyed, 1, `"name":"ProviderAuthError"`, ""},
		{"unknown provider", []string{"run", "--format", "json", "--model", "acme/x", "hi"}, keyed, 1, `"name":"ProviderModelNotFoundError"`, ""},
		{"no key at all", []string{"run", "--format", "json", "hi"}, func(string) string { return "" }, 1, `"providerID":"anthropic"`, ""},
		{"2.0 error shape", []string{"run", "--format", "json", "format=v2"}, func(string) string { return "" }, 1, `"error":{"type":"provider.auth","message":"No API key`, ""},
		{"2.0 tool part", []string{"run", "--format", "json", "--", "format=v2 subagent"}, keyed, 0, `"type":"tool","id":"toolu_01`, ""},
		{"1.x task call", []string{"run", "--format", "json", "--", "subagent"}, keyed, 0, `"tool":"task","state":{"status":"completed"`, ""},
		{"denial line", []string{"run", "--format", "json", "--", "deny"}, keyed, 0, "\x1b[0mpermission requested: external_directory (/etc/*); auto-rejecting\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, tt.getenv, &stdout, &stderr); code != tt.code {
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
	if _, err := os.Stat("index.html"); err != nil {
		t.Error(err)
	}
}
