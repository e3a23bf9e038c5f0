package main

import (
	"fmt"
	"time"

	"github.com/sandboxd/sandboxd/images/testkit/fakeagent/internal/fake"
)

// session is one fake run: what it prints, in the chosen output format.
type session struct {
	out       *fake.Out
	format    string // text, json, stream-json
	id        string // session_id
	model     string
	mode      string // permission mode
	dir       string
	keySource string // apiKeySource: the variable's name, never its value
	started   time.Time

	turns   int
	last    string     // the last assistant text
	denials []fake.Obj // permission_denials
}

func (s *session) run(prompt string) int {
	s.init()
	if s.keySource == "none" {
		const text = "Not logged in · Please run /login"
		s.apiError("authentication_failed", text)
		s.result(true, text, 0, 0, 0)
		return 1
	}
	sc := fake.ParseScenario(prompt)
	s.text("I'll create index.html and notes.md for this request.")
	if sc.Fail {
		const text = "API Error: 500 fake failure requested by the prompt"
		s.apiError("server_error", text)
		s.result(true, text, 500, 12, 9)
		return 1
	}
	fake.Progress(sc.Sleep, func(i int) {
		s.text(fmt.Sprintf("Still working (%d/%d s).", i, sc.Sleep))
	})
	files := fake.AppFiles(s.dir, "claude", prompt)
	written := 0
	for i, f := range files {
		if s.write(f) {
			written++
		}
		if i == 0 && sc.Unknown {
			s.line(fake.Obj{
				{K: "type", V: "tool_progress"}, {K: "tool_use_id", V: fake.ID("toolu_01", 22)}, {K: "tool_name", V: "Write"},
				{K: "parent_tool_use_id", V: nil}, {K: "elapsed_time_seconds", V: 1},
				{K: "session_id", V: s.id}, {K: "uuid", V: fake.UUID()},
			})
		}
	}
	if written == len(files) {
		s.text("Created index.html and notes.md.")
	} else {
		s.text("I couldn't create the files: writing them needs a permission this run did not grant.")
	}
	s.result(false, s.last, 0, 30, 638)
	return 0
}

// line prints a stream-json line; the other formats print only the result.
func (s *session) line(o fake.Obj) {
	if s.format == "stream-json" {
		s.out.JSON(o)
	}
}

func (s *session) init() {
	s.line(fake.Obj{
		{K: "type", V: "system"}, {K: "subtype", V: "init"},
		{K: "cwd", V: s.dir}, {K: "session_id", V: s.id},
		{K: "tools", V: []string{"Task", "Bash", "Glob", "Grep", "Read", "Edit", "MultiEdit", "Write", "NotebookEdit", "WebFetch", "TodoWrite", "WebSearch"}},
		{K: "mcp_servers", V: []any{}}, {K: "model", V: s.model}, {K: "permissionMode", V: s.mode},
		{K: "slash_commands", V: []string{"compact", "context", "cost", "init", "review"}},
		{K: "apiKeySource", V: s.keySource}, {K: "claude_code_version", V: version},
		{K: "output_style", V: "default"}, {K: "agents", V: []string{"general-purpose"}},
		{K: "skills", V: []any{}}, {K: "plugins", V: []any{}}, {K: "uuid", V: fake.UUID()},
	})
}

// assistant prints an assistant line holding one content block.
func (s *session) assistant(block fake.Obj, stop any, extra ...fake.KV) {
	s.turns++
	usage := fake.Obj{
		{K: "input_tokens", V: 4}, {K: "cache_creation_input_tokens", V: 310}, {K: "cache_read_input_tokens", V: 11247},
		{K: "output_tokens", V: 48}, {K: "service_tier", V: "standard"},
	}
	msg := fake.Obj{
		{K: "model", V: s.model}, {K: "id", V: fake.ID("msg_01", 22)}, {K: "type", V: "message"}, {K: "role", V: "assistant"},
		{K: "content", V: []fake.Obj{block}}, {K: "stop_reason", V: stop}, {K: "stop_sequence", V: nil}, {K: "usage", V: usage},
	}
	o := fake.Obj{{K: "type", V: "assistant"}, {K: "message", V: msg}, {K: "parent_tool_use_id", V: nil}, {K: "session_id", V: s.id}, {K: "uuid", V: fake.UUID()}}
	o = append(o, extra...)
	s.line(append(o, fake.KV{K: "timestamp", V: now()}))
}

func (s *session) text(t string) {
	s.last = t
	s.assistant(fake.Obj{{K: "type", V: "text"}, {K: "text", V: t}}, nil)
}

// apiError prints the synthetic assistant message Claude Code prints when
// the API refuses a request.
func (s *session) apiError(kind, text string) {
	s.line(fake.Obj{
		{K: "type", V: "assistant"},
		{K: "message", V: fake.Obj{
			{K: "id", V: fake.UUID()}, {K: "model", V: "<synthetic>"}, {K: "role", V: "assistant"}, {K: "stop_reason", V: "stop_sequence"},
			{K: "stop_sequence", V: ""}, {K: "type", V: "message"},
			{K: "usage", V: fake.Obj{{K: "input_tokens", V: 0}, {K: "output_tokens", V: 0}}},
			{K: "content", V: []fake.Obj{{{K: "type", V: "text"}, {K: "text", V: text}}}},
		}},
		{K: "parent_tool_use_id", V: nil}, {K: "session_id", V: s.id}, {K: "uuid", V: fake.UUID()}, {K: "error", V: kind},
	})
}

// write runs the Write tool on f: a tool_use line, the write (unless the
// permission mode denies it), and a user line with the tool result.
func (s *session) write(f fake.File) bool {
	id := fake.ID("toolu_01", 22)
	input := fake.Obj{{K: "file_path", V: f.Path}, {K: "content", V: f.Content}}
	s.assistant(fake.Obj{{K: "type", V: "tool_use"}, {K: "id", V: id}, {K: "name", V: "Write"}, {K: "input", V: input}}, "tool_use")
	result := fake.Obj{{K: "tool_use_id", V: id}, {K: "type", V: "tool_result"}}
	var toolUseResult any
	ok := s.mode == "bypassPermissions" || s.mode == "acceptEdits"
	var err error
	if ok {
		err = f.Write()
	}
	switch {
	case !ok:
		msg := "Claude requested permissions to write to " + f.Path + ", but you haven't granted it yet."
		result = append(result, fake.KV{K: "content", V: msg}, fake.KV{K: "is_error", V: true})
		toolUseResult = "Error: " + msg
		s.denials = append(s.denials, fake.Obj{{K: "tool_name", V: "Write"}, {K: "tool_use_id", V: id}, {K: "tool_input", V: input}})
	case err != nil:
		result = append(result, fake.KV{K: "content", V: "<tool_use_error>" + err.Error() + "</tool_use_error>"}, fake.KV{K: "is_error", V: true})
		toolUseResult = "Error: " + err.Error()
	default:
		result = append(result, fake.KV{K: "content", V: "File created successfully at: " + f.Path})
		toolUseResult = fake.Obj{{K: "type", V: "create"}, {K: "filePath", V: f.Path}, {K: "content", V: f.Content}, {K: "structuredPatch", V: []any{}}}
	}
	s.line(fake.Obj{
		{K: "type", V: "user"}, {K: "message", V: fake.Obj{{K: "role", V: "user"}, {K: "content", V: []fake.Obj{result}}}},
		{K: "parent_tool_use_id", V: nil}, {K: "session_id", V: s.id}, {K: "uuid", V: fake.UUID()},
		{K: "timestamp", V: now()}, {K: "tool_use_result", V: toolUseResult},
	})
	return ok && err == nil
}

// result prints the final line; with --output-format json it is the only
// output, with text only its result text is.
func (s *session) result(isError bool, text string, apiStatus, input, output int) {
	var status any
	if apiStatus != 0 {
		status = apiStatus
	}
	cost := float64(input)*3e-6 + float64(output)*15e-6
	terminal := "completed"
	if isError {
		terminal = "api_error"
	}
	denials := s.denials
	if denials == nil {
		denials = []fake.Obj{}
	}
	elapsed := time.Since(s.started).Milliseconds()
	o := fake.Obj{
		{K: "type", V: "result"}, {K: "subtype", V: "success"}, {K: "is_error", V: isError}, {K: "api_error_status", V: status},
		{K: "duration_ms", V: elapsed}, {K: "duration_api_ms", V: elapsed * 9 / 10}, {K: "num_turns", V: s.turns},
		{K: "result", V: text}, {K: "stop_reason", V: "end_turn"}, {K: "session_id", V: s.id}, {K: "total_cost_usd", V: cost},
		{K: "usage", V: fake.Obj{
			{K: "input_tokens", V: input}, {K: "cache_creation_input_tokens", V: 0}, {K: "cache_read_input_tokens", V: 0},
			{K: "output_tokens", V: output}, {K: "server_tool_use", V: fake.Obj{{K: "web_search_requests", V: 0}, {K: "web_fetch_requests", V: 0}}},
			{K: "service_tier", V: "standard"},
		}},
		{K: "modelUsage", V: fake.Obj{}}, {K: "permission_denials", V: denials},
		{K: "terminal_reason", V: terminal}, {K: "uuid", V: fake.UUID()},
	}
	switch s.format {
	case "stream-json", "json":
		s.out.JSON(o)
	default:
		s.out.Line(text)
	}
}

func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }
