package main

import (
	"fmt"
	"os"
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
	sc        fake.Scenario

	turns    int
	last     string     // the last assistant text
	denials  []fake.Obj // permission_denials
	subUsage bool       // a subagent ran on subagentModel
}

// subagentModel is the model the fake's Explore subagent runs on.
const subagentModel = "claude-haiku-4-5-20251001"

func (s *session) run(prompt string) int {
	s.init()
	if s.keySource == "none" {
		const text = "Not logged in · Please run /login"
		s.apiError("authentication_failed", text)
		s.result(true, text, 0, 0, 0)
		return 1
	}
	s.sc = fake.ParseScenario(prompt)
	s.status("requesting")
	s.text("I'll create index.html and notes.md for this request.")
	if s.sc.Fail {
		const text = "API Error: 500 fake failure requested by the prompt"
		s.apiError("server_error", text)
		s.result(true, text, 500, 12, 9)
		return 1
	}
	if s.sc.Recover {
		s.cutAnswer()
	}
	if s.sc.Subagent {
		s.subagent()
	}
	fake.Progress(s.sc.Sleep, func(i int) {
		s.text(fmt.Sprintf("Still working (%d/%d s).", i, s.sc.Sleep))
	})
	files := fake.AppFiles(s.dir, "claude", prompt)
	written, denied := 0, 0
	for i, f := range files {
		switch {
		case s.sc.Deny && i == 1:
			s.deniedWrite(f)
			denied++
		case s.write(f):
			written++
		}
		if i == 0 && s.sc.Unknown {
			s.line(fake.Obj{{K: "type", V: "fake_future_event"}, {K: "detail", V: "a type no CLI prints yet"}, {K: "session_id", V: s.id}, {K: "uuid", V: fake.UUID()}})
		}
		if i == 0 && s.sc.Edit && written == 1 {
			s.edit(fake.EditIndex(f, "claude"))
		}
	}
	if s.sc.Log && s.format == "stream-json" {
		s.out.Line("(node:1) ExperimentalWarning: SQLite is an experimental feature and might change at any time")
	}
	switch {
	case written == len(files):
		s.text("Created index.html and notes.md.")
	case denied > 0:
		s.text("Created index.html; writing notes.md was refused by a permission rule.")
	default:
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

// system prints a system line of subtype with the fields kv.
func (s *session) system(subtype string, kv ...fake.KV) {
	o := fake.Obj{{K: "type", V: "system"}, {K: "subtype", V: subtype}}
	o = append(o, kv...)
	s.line(append(o, fake.KV{K: "uuid", V: fake.UUID()}, fake.KV{K: "session_id", V: s.id}))
}

func (s *session) status(st string) { s.system("status", fake.KV{K: "status", V: st}) }

func (s *session) init() {
	s.line(fake.Obj{
		{K: "type", V: "system"}, {K: "subtype", V: "init"},
		{K: "cwd", V: s.dir}, {K: "session_id", V: s.id},
		// The subagent tool is Agent since 2.1.224; init still lists it as Task.
		{K: "tools", V: []string{"Task", "Bash", "Glob", "Grep", "Read", "Edit", "MultiEdit", "Write", "NotebookEdit", "WebFetch", "TodoWrite", "WebSearch"}},
		{K: "mcp_servers", V: []any{}}, {K: "model", V: s.model}, {K: "permissionMode", V: s.mode},
		{K: "slash_commands", V: []string{"compact", "context", "cost", "init", "review"}},
		{K: "apiKeySource", V: s.keySource}, {K: "claude_code_version", V: version},
		{K: "output_style", V: "default"}, {K: "agents", V: []string{"general-purpose", "Explore"}},
		{K: "skills", V: []any{}}, {K: "plugins", V: []any{}}, {K: "uuid", V: fake.UUID()},
	})
}

// assistant prints an assistant line holding one content block; extra
// fields go after the common ones (an error, a subagent's parent).
func (s *session) assistant(block fake.Obj, stop any, extra ...fake.KV) {
	s.assistantOf(s.model, nil, block, stop, extra...)
}

// assistantOf prints an assistant line of model; parent is the Agent call of
// the subagent that wrote it, nil for the main agent.
func (s *session) assistantOf(model string, parent any, block fake.Obj, stop any, extra ...fake.KV) {
	s.turns++
	usage := fake.Obj{
		{K: "input_tokens", V: 4}, {K: "cache_creation_input_tokens", V: 310}, {K: "cache_read_input_tokens", V: 11247},
		{K: "output_tokens", V: 48}, {K: "service_tier", V: "standard"},
	}
	msg := fake.Obj{
		{K: "model", V: model}, {K: "id", V: fake.ID("msg_01", 22)}, {K: "type", V: "message"}, {K: "role", V: "assistant"},
		{K: "content", V: []fake.Obj{block}}, {K: "stop_reason", V: stop}, {K: "stop_sequence", V: nil}, {K: "usage", V: usage},
	}
	o := fake.Obj{{K: "type", V: "assistant"}, {K: "message", V: msg}, {K: "parent_tool_use_id", V: parent}, {K: "session_id", V: s.id}, {K: "uuid", V: fake.UUID()}}
	o = append(o, extra...)
	s.line(append(o, fake.KV{K: "timestamp", V: now()}))
}

func (s *session) text(t string) {
	s.last = t
	s.assistant(fake.Obj{{K: "type", V: "text"}, {K: "text", V: t}}, nil)
}

// user prints a user line carrying a tool result; extra fields follow.
func (s *session) user(parent any, result fake.Obj, toolUseResult any, extra ...fake.KV) {
	o := fake.Obj{
		{K: "type", V: "user"}, {K: "message", V: fake.Obj{{K: "role", V: "user"}, {K: "content", V: []fake.Obj{result}}}},
		{K: "parent_tool_use_id", V: parent}, {K: "session_id", V: s.id}, {K: "uuid", V: fake.UUID()},
		{K: "timestamp", V: now()},
	}
	if toolUseResult != nil {
		o = append(o, fake.KV{K: "tool_use_result", V: toolUseResult})
	}
	s.line(append(o, extra...))
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

// cutAnswer prints an answer the output limit cut: Claude Code marks the
// line with error max_output_tokens and explains it, then asks the model to
// go on, and the run continues.
func (s *session) cutAnswer() {
	s.assistant(fake.Obj{{K: "type", V: "text"}, {K: "text", V: "Here is index.html in full:\n\n<!doctype html>\n<html lang=\"en\">"}}, "max_tokens",
		fake.KV{K: "error", V: "max_output_tokens"},
		fake.KV{K: "error_details", V: "Claude's response exceeded the 32000 output token maximum. To configure this behavior, set the CLAUDE_CODE_MAX_OUTPUT_TOKENS environment variable."})
	s.text("That answer was too long; I'll write the files with the Write tool instead.")
}

// hook prints a hook's start and its end.
func (s *session) hook(event, tool string) {
	if !s.sc.Hooks {
		return
	}
	id := fake.UUID()
	name := event + ":" + tool
	s.system("hook_started", fake.KV{K: "hook_id", V: id}, fake.KV{K: "hook_name", V: name}, fake.KV{K: "hook_event", V: event})
	s.system("hook_response", fake.KV{K: "hook_id", V: id}, fake.KV{K: "hook_name", V: name}, fake.KV{K: "hook_event", V: event},
		fake.KV{K: "output", V: ""}, fake.KV{K: "stdout", V: ""}, fake.KV{K: "stderr", V: ""}, fake.KV{K: "exit_code", V: 0}, fake.KV{K: "outcome", V: "success"})
}

// write runs the Write tool on f: a tool_use line, the write (unless the
// permission mode denies it), and a user line with the tool result.
func (s *session) write(f fake.File) bool {
	id := fake.ID("toolu_01", 22)
	input := fake.Obj{{K: "file_path", V: f.Path}, {K: "content", V: f.Content}}
	if s.sc.Hooks {
		s.system("thinking_tokens", fake.KV{K: "estimated_tokens", V: 120}, fake.KV{K: "estimated_tokens_delta", V: 120})
	}
	s.assistant(fake.Obj{{K: "type", V: "tool_use"}, {K: "id", V: id}, {K: "name", V: "Write"}, {K: "input", V: input}}, "tool_use")
	s.hook("PreToolUse", "Write")
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
	s.user(nil, result, toolUseResult)
	s.hook("PostToolUse", "Write")
	return ok && err == nil
}

// deniedWrite is a Write a permission rule refuses: Claude Code says so in
// a system line, the tool result is an error, and the result lists it.
func (s *session) deniedWrite(f fake.File) {
	id := fake.ID("toolu_01", 22)
	input := fake.Obj{{K: "file_path", V: f.Path}, {K: "content", V: f.Content}}
	s.assistant(fake.Obj{{K: "type", V: "tool_use"}, {K: "id", V: id}, {K: "name", V: "Write"}, {K: "input", V: input}}, "tool_use")
	msg := "Permission to use Write has been denied by a rule in .claude/settings.json."
	s.system("permission_denied", fake.KV{K: "tool_name", V: "Write"}, fake.KV{K: "tool_use_id", V: id},
		fake.KV{K: "decision_reason_type", V: "rule"}, fake.KV{K: "decision_reason", V: "Write(notes.md) is denied"}, fake.KV{K: "message", V: msg})
	s.user(nil, fake.Obj{{K: "tool_use_id", V: id}, {K: "type", V: "tool_result"}, {K: "content", V: msg}, {K: "is_error", V: true}}, "Error: "+msg)
	s.denials = append(s.denials, fake.Obj{{K: "tool_name", V: "Write"}, {K: "tool_use_id", V: id}, {K: "tool_input", V: input}})
}

// edit runs the Edit tool, whose result carries the change's hunks.
func (s *session) edit(e fake.Edit) {
	id := fake.ID("toolu_01", 22)
	s.assistant(fake.Obj{{K: "type", V: "tool_use"}, {K: "id", V: id}, {K: "name", V: "Edit"},
		{K: "input", V: fake.Obj{{K: "file_path", V: e.Path}, {K: "old_string", V: e.Old}, {K: "new_string", V: e.New}}}}, "tool_use")
	if err := e.Write(); err != nil {
		s.user(nil, fake.Obj{{K: "tool_use_id", V: id}, {K: "type", V: "tool_result"}, {K: "content", V: "<tool_use_error>" + err.Error() + "</tool_use_error>"}, {K: "is_error", V: true}}, "Error: "+err.Error())
		return
	}
	hunk := fake.Obj{{K: "oldStart", V: e.OldStart}, {K: "oldLines", V: 2}, {K: "newStart", V: e.OldStart}, {K: "newLines", V: 3}, {K: "lines", V: e.Lines}}
	s.user(nil, fake.Obj{{K: "tool_use_id", V: id}, {K: "type", V: "tool_result"}, {K: "content", V: "The file " + e.Path + " has been updated."}},
		fake.Obj{{K: "filePath", V: e.Path}, {K: "oldString", V: e.Old}, {K: "newString", V: e.New}, {K: "structuredPatch", V: []fake.Obj{hunk}},
			{K: "userModified", V: false}, {K: "replaceAll", V: false}})
}

// subagent hands a survey of the app to an Explore subagent, as Claude Code
// shows it: the Agent call, task_started, the subagent's own lines (their
// parent_tool_use_id is the Agent call), task_progress after each of its
// tools, task_notification with its summary, and the Agent call's result.
func (s *session) subagent() {
	call := fake.ID("toolu_01", 22)
	task := fake.ID("t", 8)
	const desc, prompt = "Survey the app", "List the files in the app directory and say what the app does."
	s.assistant(fake.Obj{{K: "type", V: "tool_use"}, {K: "id", V: call}, {K: "name", V: "Agent"},
		{K: "input", V: fake.Obj{{K: "description", V: desc}, {K: "prompt", V: prompt}, {K: "subagent_type", V: "Explore"}}}}, "tool_use")
	s.system("task_started", fake.KV{K: "task_id", V: task}, fake.KV{K: "tool_use_id", V: call}, fake.KV{K: "description", V: desc},
		fake.KV{K: "subagent_type", V: "Explore"}, fake.KV{K: "task_type", V: "local_agent"}, fake.KV{K: "is_backgrounded", V: false},
		fake.KV{K: "spawn_depth", V: 1}, fake.KV{K: "prompt", V: prompt})
	s.subUsage = true
	tags := []fake.KV{{K: "subagent_type", V: "Explore"}, {K: "task_description", V: desc}}
	progress := func(tool, summary string, uses int) {
		s.system("task_progress", fake.KV{K: "task_id", V: task}, fake.KV{K: "tool_use_id", V: call}, fake.KV{K: "description", V: desc},
			fake.KV{K: "subagent_type", V: "Explore"},
			fake.KV{K: "usage", V: fake.Obj{{K: "total_tokens", V: 3000 * uses}, {K: "tool_uses", V: uses}, {K: "duration_ms", V: 900 * uses}}},
			fake.KV{K: "last_tool_name", V: tool}, fake.KV{K: "summary", V: summary})
	}
	tool := func(name string, input fake.Obj, out string) {
		id := fake.ID("toolu_01", 22)
		s.assistantOf(subagentModel, call, fake.Obj{{K: "type", V: "tool_use"}, {K: "id", V: id}, {K: "name", V: name}, {K: "input", V: input}}, "tool_use", tags...)
		s.user(call, fake.Obj{{K: "tool_use_id", V: id}, {K: "type", V: "tool_result"}, {K: "content", V: out}}, nil, tags...)
	}
	entries, _ := os.ReadDir(s.dir)
	tool("Glob", fake.Obj{{K: "pattern", V: "*"}, {K: "path", V: s.dir}}, fmt.Sprintf("%d files", len(entries)))
	progress("Glob", fmt.Sprintf("Listed the app directory: %d entries", len(entries)), 1)
	if s.sc.Wait != "" {
		fake.WaitFor(s.sc.Wait)
	}
	tool("Bash", fake.Obj{{K: "command", V: "pwd"}, {K: "description", V: "Print the working directory"}}, s.dir)
	progress("Bash", "Checked the working directory", 2)
	summary := fmt.Sprintf("The app directory holds %d entries; nothing is built there yet.", len(entries))
	s.assistantOf(subagentModel, call, fake.Obj{{K: "type", V: "text"}, {K: "text", V: summary}}, "end_turn", tags...)
	s.system("task_notification", fake.KV{K: "task_id", V: task}, fake.KV{K: "tool_use_id", V: call}, fake.KV{K: "status", V: "completed"},
		fake.KV{K: "output_file", V: ""}, fake.KV{K: "summary", V: summary},
		fake.KV{K: "usage", V: fake.Obj{{K: "total_tokens", V: 6400}, {K: "tool_uses", V: 2}, {K: "duration_ms", V: 1900}}})
	s.user(nil, fake.Obj{{K: "tool_use_id", V: call}, {K: "type", V: "tool_result"}, {K: "content", V: []fake.Obj{{{K: "type", V: "text"}, {K: "text", V: summary}}}}},
		fake.Obj{{K: "status", V: "completed"}, {K: "prompt", V: prompt}, {K: "totalTokens", V: 6400}, {K: "totalToolUseCount", V: 2}})
}

// Token counts of the fake's subagent, on subagentModel.
const subInput, subOutput = 1800, 210

// result prints the final line; with --output-format json it is the only
// output, with text only its result text is. usage is the main loop's;
// modelUsage covers the subagent too, and the cost is the whole run's.
func (s *session) result(isError bool, text string, apiStatus, input, output int) {
	var status any
	if apiStatus != 0 {
		status = apiStatus
	}
	cost := float64(input)*3e-6 + float64(output)*15e-6
	models := fake.Obj{}
	if input+output > 0 {
		models = append(models, fake.KV{K: s.model, V: modelUsage(input, output, cost)})
	}
	if s.subUsage {
		subCost := float64(subInput)*1e-6 + float64(subOutput)*5e-6
		models = append(models, fake.KV{K: subagentModel, V: modelUsage(subInput, subOutput, subCost)})
		cost += subCost
	}
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
		{K: "modelUsage", V: models}, {K: "permission_denials", V: denials},
		{K: "terminal_reason", V: terminal}, {K: "uuid", V: fake.UUID()},
	}
	switch s.format {
	case "stream-json", "json":
		s.out.JSON(o)
	default:
		s.out.Line(text)
	}
}

func modelUsage(input, output int, cost float64) fake.Obj {
	return fake.Obj{
		{K: "inputTokens", V: input}, {K: "outputTokens", V: output}, {K: "cacheReadInputTokens", V: 0}, {K: "cacheCreationInputTokens", V: 0},
		{K: "webSearchRequests", V: 0}, {K: "costUSD", V: cost}, {K: "contextWindow", V: 200000}, {K: "maxOutputTokens", V: 64000},
	}
}

func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }
