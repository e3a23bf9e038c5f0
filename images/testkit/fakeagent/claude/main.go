// Command claude is a stand-in for Claude Code (npm @anthropic-ai/claude-code
// 2.1) in the sandboxd/testkit image. It takes the command line sandboxd's
// adapter gives the real one,
//
//	claude -p --output-format stream-json --verbose --dangerously-skip-permissions [--model m] -- <prompt>
//
// and prints what Claude Code prints in that mode, one JSON line at a time
// with a pause after each (FAKEAGENT_STEP_MS, default 50): a system init
// line, assistant lines of one content block each, user lines carrying the
// tool results, and a result line with usage and cost. It writes index.html
// and notes.md into the current directory with the Write tool. The prompt
// chooses the rest (see package fake):
//
//	sleep=N        an assistant text every second for N seconds, then the normal run
//	fail           an API error (a synthetic assistant message, is_error result), exit 1
//	unknown-event  also a line of a type no CLI prints (a type of the future)
//	subagent       first an Agent call: an Explore subagent's lines (parent_tool_use_id,
//	               task_started, task_progress, task_notification), on another model
//	wait=PATH      the subagent holds after its first progress until PATH exists
//	recover        an answer cut at the output limit (error max_output_tokens), then the run goes on
//	hooks          hook_started/hook_response lines around each Write, thinking tokens, a tool heartbeat
//	deny           notes.md's Write is refused by a permission rule (system permission_denied,
//	               an error tool result, permission_denials in the result)
//	edit           index.html is edited after it is written (tool_use_result.structuredPatch)
//	log            a runtime warning on stdout that is not JSON
//
// As in the real CLI, writes need bypass or acceptEdits mode (in other
// modes they are denied, -p having nobody to ask), bypass mode is refused
// as root unless IS_SANDBOX=1, stream-json needs --verbose, and a key is
// needed: ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN; without one the run
// ends "Not logged in", exit 1. --output-format json and text print only
// the result. Unknown options exit 2. It never reads stdin.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/images/testkit/fakeagent/internal/fake"
)

const version = "2.1.328-fakeagent"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Geteuid(), os.Stdout, os.Stderr))
}

var flags = fake.Flags{
	Strings: map[string]bool{
		"output-format": true, "input-format": true, "model": true, "fallback-model": true, "permission-mode": true,
		"max-turns": true, "max-budget-usd": true, "system-prompt": true, "append-system-prompt": true,
		"allowedTools": true, "allowed-tools": true, "disallowedTools": true, "disallowed-tools": true,
		"session-id": true, "resume": true, "add-dir": true, "settings": true, "mcp-config": true,
	},
	Bools: map[string]bool{
		"print": true, "verbose": true, "dangerously-skip-permissions": true, "allow-dangerously-skip-permissions": true,
		"no-session-persistence": true, "include-partial-messages": true, "continue": true, "version": true, "help": true,
	},
	Short: map[string]string{"p": "print", "c": "continue", "r": "resume", "v": "version", "h": "help"},
}

var permissionModes = []string{"acceptEdits", "auto", "bypassPermissions", "default", "dontAsk", "plan"}

// models maps the aliases to the model ids the fake reports.
var models = map[string]string{
	"":       "claude-sonnet-4-5-20250929",
	"sonnet": "claude-sonnet-4-5-20250929",
	"opus":   "claude-opus-4-1-20250805",
	"haiku":  "claude-haiku-4-5-20251001",
}

func run(args []string, getenv func(string) string, euid int, stdout, stderr io.Writer) int {
	a, err := flags.Parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	switch {
	case a.Set["version"]:
		fmt.Fprintln(stdout, version+" (Claude Code)")
		return 0
	case a.Set["help"]:
		fmt.Fprintln(stdout, "Usage: claude -p [options] [prompt]")
		return 0
	case !a.Set["print"]:
		fmt.Fprintln(stderr, "fake claude: no interactive mode; use -p")
		return 2
	case len(a.Positional) > 1:
		fmt.Fprintf(stderr, "error: too many arguments. Expected 1 argument but got %d.\n", len(a.Positional))
		return 2
	}
	format := a.Values["output-format"]
	switch format {
	case "":
		format = "text"
	case "text", "json", "stream-json":
	default:
		fmt.Fprintf(stderr, "error: option '--output-format <format>' argument '%s' is invalid. Allowed choices are text, json, stream-json.\n", format)
		return 2
	}
	if f := a.Values["input-format"]; f != "" && f != "text" {
		fmt.Fprintln(stderr, "fake claude: only --input-format text is supported")
		return 2
	}
	mode := a.Values["permission-mode"]
	if mode == "" {
		mode = "default"
	}
	if !slices.Contains(permissionModes, mode) {
		fmt.Fprintf(stderr, "error: option '--permission-mode <mode>' argument '%s' is invalid. Allowed choices are %s.\n", mode, strings.Join(permissionModes, ", "))
		return 2
	}
	if a.Set["dangerously-skip-permissions"] {
		mode = "bypassPermissions"
	}
	if format == "stream-json" && !a.Set["verbose"] {
		fmt.Fprintln(stderr, "Error: When using --print, --output-format=stream-json requires --verbose")
		return 1
	}
	// Claude Code's own guard (anthropics/claude-code#58150).
	if mode == "bypassPermissions" && euid == 0 && getenv("IS_SANDBOX") != "1" {
		fmt.Fprintln(stderr, "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons")
		return 1
	}
	var prompt string
	if len(a.Positional) == 1 {
		prompt = a.Positional[0]
	}
	if strings.TrimSpace(prompt) == "" {
		fmt.Fprintln(stderr, "Error: Input must be provided either through stdin or as a prompt argument when using --print")
		return 1
	}
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	model, ok := models[a.Values["model"]]
	if !ok {
		model = a.Values["model"]
	}
	s := &session{
		out: fake.NewOut(stdout, getenv), format: format, id: fake.UUID(), model: model,
		mode: mode, dir: dir, started: time.Now(), keySource: keySource(getenv),
	}
	return s.run(prompt)
}

func keySource(getenv func(string) string) string {
	switch {
	case getenv("ANTHROPIC_API_KEY") != "":
		return "ANTHROPIC_API_KEY"
	case getenv("CLAUDE_CODE_OAUTH_TOKEN") != "":
		return "CLAUDE_CODE_OAUTH_TOKEN"
	}
	return "none"
}
