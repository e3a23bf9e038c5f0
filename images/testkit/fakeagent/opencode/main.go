// Command opencode is a stand-in for the OpenCode CLI (npm opencode-ai 1.18)
// in the sandboxd/testkit image. It takes the command line sandboxd's
// adapter gives the real one,
//
//	opencode run --format json --auto [--model provider/model] -- <prompt>
//
// and prints what `opencode run --format json` prints, one JSON line at a
// time with a pause after each (FAKEAGENT_STEP_MS, default 50):
// step_start, text, tool_use and step_finish lines, and an error line when
// the run fails. It writes index.html and notes.md into the current
// directory. The prompt chooses the rest (see package fake):
//
//	sleep=N        a text line every second for N seconds, then the normal run
//	fail           an APIError line, exit 1
//	unknown-event  also a "snapshot" line, a type `opencode run` never prints
//	format=v2      the 2.0 CLI's stream: tool parts with "id" (no "callID"),
//	               errors {type, message, status}, and exit 130 with an
//	               "aborted" error line on SIGINT
//	subagent       first a task call that a subagent ran (run prints its end only)
//	recover        a provider error line, then a new step: the run goes on
//	deny           the coloured "! permission requested: …; auto-rejecting" line on
//	               stdout and the refused tool call's error
//	edit           index.html is edited after it is written (metadata.diff)
//	log            lines on stdout that are not JSON (a formatter's note, a stack trace)
//
// Like the real CLI it needs a provider key in the environment:
// ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENCODE_API_KEY (the one of the
// --model's provider when given); without one it prints a ProviderAuthError
// line and exits 1. Unknown options exit 2. It never reads stdin.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sandboxd/sandboxd/images/testkit/fakeagent/internal/fake"
)

const version = "1.18.33-fakeagent"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

var runFlags = fake.Flags{
	Strings: map[string]bool{"format": true, "model": true, "agent": true, "session": true, "title": true, "variant": true, "dir": true, "log-level": true, "file": true},
	Bools:   map[string]bool{"auto": true, "dangerously-skip-permissions": true, "thinking": true, "print-logs": true, "continue": true, "share": true, "help": true},
	Short:   map[string]string{"m": "model", "s": "session", "c": "continue", "f": "file", "h": "help"},
}

// providerKeys maps a provider to the variable its key is read from.
var providerKeys = []struct{ provider, env string }{
	{"anthropic", "ANTHROPIC_API_KEY"},
	{"openai", "OPENAI_API_KEY"},
	{"opencode", "OPENCODE_API_KEY"},
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		fmt.Fprintln(stderr, "fake opencode: no interactive mode; use: opencode run [message..]")
		return 2
	case args[0] == "--version" || args[0] == "-v":
		fmt.Fprintln(stdout, version)
		return 0
	case args[0] == "--help" || args[0] == "-h":
		fmt.Fprintln(stdout, "usage: opencode run [message..] [--format default|json] [--model provider/model] [--auto]")
		return 0
	case args[0] != "run":
		fmt.Fprintf(stderr, "fake opencode: unknown command %q\n", args[0])
		return 2
	}
	a, err := runFlags.Parse(args[1:])
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	if a.Set["help"] {
		fmt.Fprintln(stdout, "usage: opencode run [message..] [--format default|json] [--model provider/model] [--auto]")
		return 0
	}
	format := a.Values["format"]
	if format == "" {
		format = "default"
	}
	if format != "default" && format != "json" {
		fmt.Fprintf(stderr, "Invalid values:\n  Argument: format, Given: %q, Choices: \"default\", \"json\"\n", format)
		return 2
	}
	if dir := a.Values["dir"]; dir != "" {
		if err := os.Chdir(dir); err != nil {
			fmt.Fprintln(stderr, "Error: Failed to change directory to", dir)
			return 1
		}
	}
	prompt := strings.Join(a.Positional, " ")
	if strings.TrimSpace(prompt) == "" {
		fmt.Fprintln(stderr, "Error: You must provide a message or a command")
		return 1
	}
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	s := &session{out: fake.NewOut(stdout, getenv), stderr: stderr, json: format == "json", id: fake.ID("ses_", 26), dir: dir,
		sc: fake.ParseScenario(prompt)}
	return s.run(prompt, a.Values["model"], getenv)
}
