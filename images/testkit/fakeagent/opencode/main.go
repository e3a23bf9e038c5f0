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
//
// Like the real CLI it needs a provider key in the environment:
// ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENCODE_API_KEY (the one of the
// --model's provider when given); without one it prints a ProviderAuthError
// line and exits 1. Unknown options exit 2. It never reads stdin.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	s := &session{out: fake.NewOut(stdout, getenv), stderr: stderr, json: format == "json", id: fake.ID("ses_", 26), dir: dir}
	return s.run(prompt, a.Values["model"], getenv)
}

type session struct {
	out    *fake.Out
	stderr io.Writer
	json   bool
	id     string // sessionID
	msg    string // the current step's messageID
	dir    string
}

func (s *session) run(prompt, model string, getenv func(string) string) int {
	if err := s.auth(model, getenv); err != nil {
		return 1
	}
	sc := fake.ParseScenario(prompt)
	s.stepStart()
	s.text("I'll create index.html and notes.md for this request.")
	if sc.Fail {
		s.error("APIError", fake.Obj{{K: "message", V: "fake failure requested by the prompt"}, {K: "statusCode", V: 500}, {K: "isRetryable", V: false}})
		return 1
	}
	fake.Progress(sc.Sleep, func(i int) {
		s.text(fmt.Sprintf("Still working (%d/%d s).", i, sc.Sleep))
	})
	files := fake.AppFiles(s.dir, "opencode", prompt)
	if !s.write(files[0]) {
		return 1
	}
	s.stepFinish("tool-calls", 7952, 162, 0, 0.0264507)
	s.stepStart()
	if !s.write(files[1]) {
		return 1
	}
	if sc.Unknown {
		s.emit("snapshot", fake.KV{K: "part", V: s.part("snapshot", fake.KV{K: "snapshot", V: "4b825dc642cb6eb9a060e54bf8d69288fbee4904"})})
	}
	s.stepFinish("tool-calls", 412, 731, 7680, 0.0391245)
	s.stepStart()
	s.text("Created index.html and notes.md.")
	s.stepFinish("stop", 203, 64, 8080, 0.0102961)
	return 0
}

// auth finds the provider key the run needs, as the real CLI does before it
// calls a model, and prints its error when there is none. Without --model
// any provider with a key will do.
func (s *session) auth(model string, getenv func(string) string) error {
	if model == "" {
		for _, p := range providerKeys {
			if getenv(p.env) != "" {
				return nil
			}
		}
		return s.authError("anthropic")
	}
	provider, modelID, _ := strings.Cut(model, "/")
	for _, p := range providerKeys {
		if p.provider == provider {
			if getenv(p.env) != "" {
				return nil
			}
			return s.authError(provider)
		}
	}
	s.error("ProviderModelNotFoundError", fake.Obj{{K: "providerID", V: provider}, {K: "modelID", V: modelID}})
	return errors.New("unknown provider " + provider)
}

func (s *session) authError(provider string) error {
	s.error("ProviderAuthError", fake.Obj{{K: "providerID", V: provider}, {K: "message", V: "No API key found for provider " + provider + ": set its key in the environment or run opencode auth login"}})
	return errors.New("no key for " + provider)
}

func (s *session) emit(typ string, data ...fake.KV) {
	s.out.JSON(append(fake.Obj{{K: "type", V: typ}, {K: "timestamp", V: time.Now().UnixMilli()}, {K: "sessionID", V: s.id}}, data...))
}

func (s *session) part(typ string, kv ...fake.KV) fake.Obj {
	return append(fake.Obj{{K: "id", V: fake.ID("prt_", 26)}, {K: "sessionID", V: s.id}, {K: "messageID", V: s.msg}, {K: "type", V: typ}}, kv...)
}

func span(ms int64) fake.Obj {
	now := time.Now().UnixMilli()
	return fake.Obj{{K: "start", V: now - ms}, {K: "end", V: now}}
}

func (s *session) stepStart() {
	s.msg = fake.ID("msg_", 26)
	if s.json {
		s.emit("step_start", fake.KV{K: "part", V: s.part("step-start", fake.KV{K: "snapshot", V: "4b825dc642cb6eb9a060e54bf8d69288fbee4904"})})
	}
}

func (s *session) text(t string) {
	if !s.json {
		s.out.Line(t)
		return
	}
	s.emit("text", fake.KV{K: "part", V: s.part("text", fake.KV{K: "text", V: t}, fake.KV{K: "time", V: span(180)})})
}

// write runs the write tool, which `opencode run` shows once it is done.
// A failed write ends the run as the real CLI's would end: with an error.
func (s *session) write(f fake.File) bool {
	if err := f.Write(); err != nil {
		s.error("UnknownError", fake.Obj{{K: "message", V: err.Error()}})
		return false
	}
	rel, err := filepath.Rel(s.dir, f.Path)
	if err != nil {
		rel = f.Path
	}
	if !s.json {
		s.out.Line("| Write    " + rel)
		return true
	}
	state := fake.Obj{
		{K: "status", V: "completed"},
		{K: "input", V: fake.Obj{{K: "filePath", V: f.Path}, {K: "content", V: f.Content}}},
		{K: "output", V: "Wrote file successfully."},
		{K: "title", V: rel},
		{K: "metadata", V: fake.Obj{{K: "diagnostics", V: fake.Obj{}}, {K: "filepath", V: f.Path}, {K: "exists", V: false}}},
		{K: "time", V: span(40)},
	}
	s.emit("tool_use", fake.KV{K: "part", V: s.part("tool", fake.KV{K: "callID", V: fake.ID("toolu_01", 22)}, fake.KV{K: "tool", V: "write"}, fake.KV{K: "state", V: state})})
	return true
}

func (s *session) stepFinish(reason string, input, output, cacheRead int, cost float64) {
	if !s.json {
		return
	}
	tokens := fake.Obj{
		{K: "total", V: input + output + cacheRead},
		{K: "input", V: input},
		{K: "output", V: output},
		{K: "reasoning", V: 0},
		{K: "cache", V: fake.Obj{{K: "write", V: 0}, {K: "read", V: cacheRead}}},
	}
	s.emit("step_finish", fake.KV{K: "part", V: s.part("step-finish",
		fake.KV{K: "reason", V: reason}, fake.KV{K: "snapshot", V: "4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
		fake.KV{K: "cost", V: cost}, fake.KV{K: "tokens", V: tokens})})
}

// error prints a session error: a JSON line, or "Error: …" on stderr.
func (s *session) error(name string, data fake.Obj) {
	if !s.json {
		msg := name
		for _, kv := range data {
			if kv.K == "message" {
				msg = fmt.Sprint(kv.V)
			}
		}
		fmt.Fprintln(s.stderr, "Error:", msg)
		return
	}
	s.emit("error", fake.KV{K: "error", V: fake.Obj{{K: "name", V: name}, {K: "data", V: data}}})
}
