package agent

import (
	"strconv"
	"strings"
)

// Claude is the adapter for Claude Code (npm @anthropic-ai/claude-code), run
// as `claude -p --output-format stream-json --verbose`, which prints one
// JSON message a line:
//
//	{"type":"system","subtype":"init","session_id":"…","model":"…","cwd":"…","tools":[…],…}
//	{"type":"assistant","message":{"id":"msg_…","content":[{"type":"text"|"thinking"|"tool_use",…}],"usage":{…}},"parent_tool_use_id":null,"session_id":"…"}
//	{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"toolu_…","content":"…","is_error":false}]},…}
//	{"type":"result","subtype":"success","is_error":false,"result":"…","total_cost_usd":0.06,"usage":{…},…}
//
// Each assistant line holds one content block of an API message; several
// lines can share the message's id. See FORMATS.md for the versions.
type Claude struct {
	// Dir is the directory the agent runs in: file paths under it are
	// reported relative to it. Empty means AppDir.
	Dir string
}

var _ Adapter = Claude{}

func (Claude) Name() string   { return "claude" }
func (Claude) Binary() string { return "claude" }

// Command is `claude -p --output-format stream-json --verbose
// --dangerously-skip-permissions [--model m] -- prompt`. stream-json needs
// --verbose with -p. --permission-mode acceptEdits would allow edits but
// still deny every shell command in -p mode, where nobody can answer a
// prompt, so an agent could not install or build; bypass mode allows both
// (Claude Code still refuses catastrophic removals). Claude Code refuses
// bypass mode as root unless IS_SANDBOX=1; sandboxd runs it as the sandbox's
// own uid, never root.
func (Claude) Command(prompt, model string) []string {
	argv := []string{"claude", "-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"}
	if model != "" {
		argv = append(argv, "--model", model)
	}
	return append(argv, "--", prompt)
}

// Env turns off what Claude Code would send or fetch beyond the model's API:
// telemetry, error reports and update checks (the binary is in the
// read-only image).
func (Claude) Env() map[string]string {
	return map[string]string{
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
		"DISABLE_AUTOUPDATER":                      "1",
	}
}

func (a Claude) NewParser() Parser {
	return &claudeParser{dir: dirOr(a.Dir), tools: map[string]claudeTool{}}
}

// claudeTool is a tool call waiting for its result.
type claudeTool struct {
	name, input string
	changed     []string
}

type claudeParser struct {
	dir     string
	res     Result
	tools   map[string]claudeTool // by tool_use id
	lastMsg string                // id of the assistant message FinalMessage holds text of
}

func (p *claudeParser) Result() Result { return p.res }

func (p *claudeParser) Parse(line []byte) []Event {
	b, v, ok := decode(line)
	if b == nil {
		return nil
	}
	if !ok {
		return []Event{rawText(b)}
	}
	m := obj(v)
	var evs []Event
	switch str(m, "type") {
	case "system":
		evs = p.system(m)
	case "assistant":
		evs = p.assistant(m)
	case "user":
		evs = p.user(m)
	case "result":
		evs = p.result(m)
	case "rate_limit_event":
		if s := str(obj(m["rate_limit_info"]), "status"); s != "" {
			evs = []Event{{Type: TypeStatus, Phase: "rate_limit", Text: s}}
		}
	}
	if evs == nil {
		return []Event{rawJSON(b)}
	}
	return evs
}

func (p *claudeParser) system(m map[string]any) []Event {
	switch str(m, "subtype") {
	case "init":
		id := str(m, "session_id")
		p.res.SessionID = id
		text := "session " + id
		if model := str(m, "model"); model != "" {
			text += ", model " + model
		}
		return []Event{{Type: TypeStatus, Phase: "session", Text: text}}
	case "api_retry":
		text := "attempt " + strconv.FormatInt(count(m, "attempt"), 10)
		if n := count(m, "max_retries"); n > 0 {
			text += " of " + strconv.FormatInt(n, 10)
		}
		if e := str(m, "error"); e != "" {
			text += ": " + e
		}
		if s := count(m, "error_status"); s > 0 {
			text += " (" + strconv.FormatInt(s, 10) + ")"
		}
		return []Event{{Type: TypeStatus, Phase: "retry", Text: text}}
	case "compact_boundary":
		return []Event{{Type: TypeStatus, Phase: "compacting"}}
	}
	return nil
}

func (p *claudeParser) assistant(m map[string]any) []Event {
	msg := obj(m["message"])
	if msg == nil {
		return nil
	}
	content := list(msg, "content")
	// A failure Claude Code reports as a synthetic assistant message:
	// {"error":"authentication_failed","message":{"model":"<synthetic>",
	// "content":[{"type":"text","text":"Not logged in · Please run /login"}]}}.
	if kind := str(m, "error"); kind != "" {
		text := blockText(content)
		if text == "" {
			text = kind
		}
		p.res.fail(text)
		return []Event{{Type: TypeError, Text: text}}
	}
	if s := str(msg, "content"); s != "" {
		return []Event{{Type: TypeMessage, Role: "assistant", Text: s}}
	}
	if content == nil {
		return nil
	}
	// A subagent's messages (parent_tool_use_id set) are progress, not the answer.
	top := m["parent_tool_use_id"] == nil
	id := str(msg, "id")
	evs := []Event{}
	for _, c := range content {
		block := obj(c)
		switch str(block, "type") {
		case "text":
			text := str(block, "text")
			if text == "" {
				continue
			}
			if top {
				if id != "" && id == p.lastMsg && p.res.FinalMessage != "" {
					p.res.FinalMessage += "\n\n" + text
				} else {
					p.res.FinalMessage, p.lastMsg = text, id
				}
			}
			evs = append(evs, Event{Type: TypeMessage, Role: "assistant", Text: text})
		case "thinking":
			evs = append(evs, Event{Type: TypeStatus, Phase: "thinking", Text: short(str(block, "thinking"), detailLimit)})
		case "redacted_thinking":
			evs = append(evs, Event{Type: TypeStatus, Phase: "thinking"})
		case "tool_use", "server_tool_use":
			name := strings.ToLower(str(block, "name"))
			summary, changed := summarize(name, obj(block["input"]), p.dir)
			if id := str(block, "id"); id != "" {
				p.tools[id] = claudeTool{name: name, input: summary, changed: changed}
			}
			evs = append(evs, Event{Type: TypeTool, Tool: name, Input: summary, Status: ToolRunning})
		case "tool_result":
			evs = append(evs, p.toolResult(block)...)
		default:
			evs = append(evs, rawValue(c))
		}
	}
	return evs
}

func (p *claudeParser) user(m map[string]any) []Event {
	msg := obj(m["message"])
	if msg == nil {
		return nil
	}
	if s := str(msg, "content"); s != "" {
		return []Event{{Type: TypeMessage, Role: "user", Text: s}}
	}
	content := list(msg, "content")
	if content == nil {
		return nil
	}
	evs := []Event{}
	for _, c := range content {
		block := obj(c)
		switch str(block, "type") {
		case "tool_result":
			evs = append(evs, p.toolResult(block)...)
		case "text":
			if text := str(block, "text"); text != "" {
				evs = append(evs, Event{Type: TypeMessage, Role: "user", Text: text})
			}
		default:
			evs = append(evs, rawValue(c))
		}
	}
	return evs
}

// toolResult maps a tool_result block to the end of its tool call, and to
// file_changed events when a file tool succeeded: a failed edit changed
// nothing.
func (p *claudeParser) toolResult(block map[string]any) []Event {
	id := str(block, "tool_use_id")
	call := p.tools[id]
	delete(p.tools, id)
	ev := Event{Type: TypeTool, Tool: call.name, Input: call.input, Status: ToolCompleted}
	if boolean(block, "is_error") {
		ev.Status = ToolError
		if text, ok := block["content"].(string); ok {
			ev.Text = short(text, detailLimit)
		} else {
			ev.Text = short(blockText(list(block, "content")), detailLimit)
		}
		return []Event{ev}
	}
	return append([]Event{ev}, fileEvents(call.changed)...)
}

func (p *claudeParser) result(m map[string]any) []Event {
	usage := obj(m["usage"])
	p.res.Usage = Usage{
		InputTokens:      count(usage, "input_tokens"),
		OutputTokens:     count(usage, "output_tokens"),
		CacheReadTokens:  count(usage, "cache_read_input_tokens"),
		CacheWriteTokens: count(usage, "cache_creation_input_tokens"),
		CostUSD:          max(number(m, "total_cost_usd"), 0),
	}
	if p.res.SessionID == "" {
		p.res.SessionID = str(m, "session_id")
	}
	text := str(m, "result")
	u := p.res.Usage
	evs := []Event{{Type: TypeUsage, Usage: &u}}
	// subtype "success" with is_error true is how an API failure ends
	// (a refused key, a rate limit): is_error decides, subtype adds to it.
	subtype := str(m, "subtype")
	if !boolean(m, "is_error") && (subtype == "" || subtype == "success") {
		if text != "" {
			p.res.FinalMessage = text
		}
		return evs
	}
	if text == "" {
		var errs []string
		for _, e := range list(m, "errors") {
			if s, ok := e.(string); ok {
				errs = append(errs, s)
			}
		}
		text = strings.Join(errs, "; ")
	}
	if text == "" {
		text = subtype
	}
	if text == "" {
		text = "error"
	}
	if !p.res.Failed { // else an error event already showed it
		evs = append(evs, Event{Type: TypeError, Text: text})
	}
	p.res.fail(text)
	return evs
}

// blockText joins the text blocks of a content list.
func blockText(content []any) string {
	var parts []string
	for _, c := range content {
		block := obj(c)
		if str(block, "type") == "text" {
			if t := str(block, "text"); t != "" {
				parts = append(parts, t)
			}
		}
	}
	return strings.Join(parts, "\n")
}
