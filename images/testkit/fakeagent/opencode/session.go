package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/images/testkit/fakeagent/internal/fake"
)

// session is one fake run: what it prints, as 1.x's `run` or the 2.0 CLI.
type session struct {
	out    *fake.Out
	stderr io.Writer
	json   bool
	id     string // sessionID
	msg    string // the current step's messageID
	dir    string
	sc     fake.Scenario
}

func (s *session) run(prompt, model string, getenv func(string) string) int {
	if s.sc.V2 && s.json {
		stop := s.onInterrupt()
		defer stop()
	}
	if err := s.auth(model, getenv); err != nil {
		return 1
	}
	sc := s.sc
	s.stepStart()
	s.text("I'll create index.html and notes.md for this request.")
	if sc.Fail {
		s.error("APIError", "provider.api", "fake failure requested by the prompt", 500, fake.KV{K: "isRetryable", V: false})
		return 1
	}
	if sc.Recover {
		s.error("APIError", "provider.overloaded", "the provider is overloaded; retrying", 529, fake.KV{K: "isRetryable", V: true})
		s.stepStart()
	}
	if sc.Subagent {
		s.task()
	}
	if sc.Deny {
		s.denied()
	}
	fake.Progress(sc.Sleep, func(i int) {
		s.text(fmt.Sprintf("Still working (%d/%d s).", i, sc.Sleep))
	})
	files := fake.AppFiles(s.dir, "opencode", prompt)
	if !s.write(files[0]) {
		return 1
	}
	if sc.Edit && !s.edit(fake.EditIndex(files[0], "opencode")) {
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
	if sc.Log && s.json {
		s.out.Line("[formatter] prettier: formatted notes.md")
		s.out.Line("Error: ENOENT: no such file or directory, open '.opencode/plugin.ts'")
		s.out.Line("    at loadPlugins (/$bunfs/root/src/plugin/index.ts:41:17)")
	}
	s.stepFinish("tool-calls", 412, 731, 7680, 0.0391245)
	s.stepStart()
	s.text("Created index.html and notes.md.")
	s.stepFinish("stop", 203, 64, 8080, 0.0102961)
	return 0
}

// onInterrupt makes SIGINT end the run as the 2.0 CLI ends it: an
// "aborted" error line and exit code 130. It returns the function that
// stops listening.
func (s *session) onInterrupt() func() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
			s.error("MessageAbortedError", "aborted", "Session interrupted: user", 0)
			os.Exit(130)
		case <-done:
		}
	}()
	return func() { signal.Stop(sig); close(done) }
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
	s.error("ProviderModelNotFoundError", "provider.model-not-found", "Model not found: "+provider+"/"+modelID, 0,
		fake.KV{K: "providerID", V: provider}, fake.KV{K: "modelID", V: modelID})
	return errors.New("unknown provider " + provider)
}

func (s *session) authError(provider string) error {
	s.error("ProviderAuthError", "provider.auth", "No API key found for provider "+provider+": set its key in the environment or run opencode auth login", 0,
		fake.KV{K: "providerID", V: provider})
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

// tool prints a finished tool part: 1.x names the call "callID", 2.0 "id"
// (its part id being "partID"), and 2.0 wraps the tool's metadata.
func (s *session) tool(name string, state fake.Obj) {
	call := fake.ID("toolu_01", 22)
	var p fake.Obj
	if s.sc.V2 {
		p = fake.Obj{{K: "partID", V: fake.ID("prt_", 26)}, {K: "sessionID", V: s.id}, {K: "messageID", V: s.msg}, {K: "type", V: "tool"},
			{K: "id", V: call}, {K: "tool", V: name}, {K: "state", V: state}}
	} else {
		p = s.part("tool", fake.KV{K: "callID", V: call}, fake.KV{K: "tool", V: name}, fake.KV{K: "state", V: state})
	}
	s.emit("tool_use", fake.KV{K: "part", V: p})
}

// metadata is a tool's metadata as the version prints it.
func (s *session) metadata(m fake.Obj, output string) fake.Obj {
	if s.sc.V2 {
		return fake.Obj{{K: "metadata", V: m}, {K: "content", V: []fake.Obj{{{K: "type", V: "text"}, {K: "text", V: output}}}}}
	}
	return m
}

// write runs the write tool, which `opencode run` shows once it is done.
// A failed write ends the run as the real CLI's would end: with an error.
func (s *session) write(f fake.File) bool {
	if err := f.Write(); err != nil {
		s.error("UnknownError", "unknown", err.Error(), 0)
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
	const output = "Wrote file successfully."
	s.tool("write", fake.Obj{
		{K: "status", V: "completed"},
		{K: "input", V: fake.Obj{{K: "filePath", V: f.Path}, {K: "content", V: f.Content}}},
		{K: "output", V: output},
		{K: "title", V: rel},
		{K: "metadata", V: s.metadata(fake.Obj{{K: "diagnostics", V: fake.Obj{}}, {K: "filepath", V: f.Path}, {K: "exists", V: false}}, output)},
		{K: "time", V: span(40)},
	})
	return true
}

// edit runs the edit tool; its metadata carries the change as a diff.
func (s *session) edit(e fake.Edit) bool {
	if err := e.Write(); err != nil {
		s.error("UnknownError", "unknown", err.Error(), 0)
		return false
	}
	if !s.json {
		s.out.Line("| Edit     index.html")
		return true
	}
	const output = "Edit applied successfully."
	s.tool("edit", fake.Obj{
		{K: "status", V: "completed"},
		{K: "input", V: fake.Obj{{K: "filePath", V: e.Path}, {K: "oldString", V: e.Old}, {K: "newString", V: e.New}}},
		{K: "output", V: output},
		{K: "title", V: "index.html"},
		{K: "metadata", V: s.metadata(fake.Obj{{K: "diagnostics", V: fake.Obj{}}, {K: "diff", V: e.UnifiedOut}}, output)},
		{K: "time", V: span(30)},
	})
	return true
}

// task is a task call a subagent ran. `run` prints the parent session's
// events only, so the subagent is seen when its call completes.
func (s *session) task() {
	if s.sc.Wait != "" { // the subagent's call completes once the test says so
		fake.WaitFor(s.sc.Wait)
	}
	if !s.json {
		s.out.Line("| Task     Survey the app")
		return
	}
	entries, _ := os.ReadDir(s.dir)
	summary := fmt.Sprintf("The app directory holds %d entries; nothing is built there yet.", len(entries))
	child := fake.ID("ses_", 26)
	s.tool("task", fake.Obj{
		{K: "status", V: "completed"},
		{K: "input", V: fake.Obj{{K: "description", V: "Survey the app"}, {K: "prompt", V: "List the files in the app directory and say what the app does."}, {K: "subagent_type", V: "explore"}}},
		{K: "output", V: summary + "\n\n<task_metadata>\nsession_id: " + child + "\n</task_metadata>"},
		{K: "title", V: "Survey the app"},
		{K: "metadata", V: s.metadata(fake.Obj{{K: "sessionId", V: child}}, summary)},
		{K: "time", V: span(900)},
	})
}

// denied is a permission the run cannot ask about: the coloured warning
// `run` prints on stdout, then the refused call's error.
func (s *session) denied() {
	if !s.json {
		return
	}
	s.out.Line("\x1b[93m\x1b[1m! \x1b[0mpermission requested: external_directory (/etc/*); auto-rejecting")
	s.tool("read", fake.Obj{
		{K: "status", V: "error"},
		{K: "input", V: fake.Obj{{K: "filePath", V: "/etc/hosts"}}},
		{K: "error", V: "The user rejected permission to use this specific tool call."},
		{K: "time", V: span(5)},
	})
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

// error prints a session error: a JSON line shaped as the version shapes
// it (1.x {name, data{message, …}}, 2.0 {type, message, status?}), or
// "Error: …" on stderr.
func (s *session) error(name, typ, msg string, status int, data ...fake.KV) {
	if !s.json {
		fmt.Fprintln(s.stderr, "Error:", msg)
		return
	}
	if s.sc.V2 {
		e := fake.Obj{{K: "type", V: typ}, {K: "message", V: msg}}
		if status != 0 {
			e = append(e, fake.KV{K: "status", V: status})
		}
		s.emit("error", fake.KV{K: "error", V: e})
		return
	}
	d := append(fake.Obj{}, data...)
	if msg != "" {
		d = append(fake.Obj{{K: "message", V: msg}}, d...)
	}
	if status != 0 {
		d = append(d, fake.KV{K: "statusCode", V: status})
	}
	s.emit("error", fake.KV{K: "error", V: fake.Obj{{K: "name", V: name}, {K: "data", V: d}}})
}
