package agent

import (
	"strings"
)

// Claude is the adapter for Claude Code (npm @anthropic-ai/claude-code), run
// as `claude -p --output-format stream-json --verbose`, which prints one
// JSON message a line:
//
//	{"type":"system","subtype":"init","session_id":"…","model":"…","cwd":"…","tools":[…],…}
//	{"type":"assistant","message":{"id":"msg_…","content":[{"type":"text"|"thinking"|"tool_use",…}],"usage":{…}},"parent_tool_use_id":null,"session_id":"…"}
//	{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"toolu_…","content":"…","is_error":false}]},"tool_use_result":{…},…}
//	{"type":"system","subtype":"task_progress","task_id":"…","tool_use_id":"toolu_…","description":"…",…}
//	{"type":"result","subtype":"success","is_error":false,"result":"…","total_cost_usd":0.06,"usage":{…},"modelUsage":{…},"terminal_reason":"completed",…}
//
// Each assistant line holds one content block of an API message; several
// lines can share the message's id. Lines of a subagent carry the id of the
// Agent tool call that started it as parent_tool_use_id. See FORMATS.md for
// the versions.
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
	return &claudeParser{
		dir: dirOr(a.Dir), tools: map[string]claudeTool{}, subagents: map[string]*claudeSubagent{},
		tasks: map[string]string{}, denied: map[string]bool{},
	}
}

// claudeTool is a tool call waiting for its result.
type claudeTool struct {
	name, input string
	changed     []string
}

// claudeSubagent is a subagent the stream started, by the id of its Agent call.
type claudeSubagent struct {
	Subagent
	finished bool
}

type claudeParser struct {
	dir        string
	res        Result
	held       held
	resultSeen bool
	tools      map[string]claudeTool      // by tool_use id
	subagents  map[string]*claudeSubagent // by the tool_use id of the Agent call
	tasks      map[string]string          // task_id → subagent key
	denied     map[string]bool            // tool_use ids shown as permission_denied
	lastMsg    string                     // id of the assistant message FinalMessage holds text of
}

var (
	_ Parser   = (*claudeParser)(nil)
	_ Finisher = (*claudeParser)(nil)
)

// Result is what the stream said so far. An error line that nothing has
// followed yet counts as the failure until the run goes on after it.
func (p *claudeParser) Result() Result {
	r := p.res
	r.Usage = r.Usage.clone()
	if f, ok := p.held.first(); ok && !p.resultSeen {
		r.setFailure(f)
	}
	return r
}

// Finish reports an error line the stream ended on, with no result after it
// (the CLI was killed, or crashed).
func (p *claudeParser) Finish() []Event {
	if p.resultSeen {
		return nil
	}
	f, ok := p.held.first()
	if !ok {
		return nil
	}
	p.held.errs = nil
	p.res.setFailure(f)
	p.resultSeen = true
	return []Event{f.event(TypeError)}
}

func (p *claudeParser) Parse(line []byte) []Event {
	b, v, ok := decode(line)
	if b == nil {
		return nil
	}
	if !ok {
		return []Event{logEvent(b)}
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
	case "tool_progress":
		evs = p.toolProgress(m)
	case "tool_use_summary":
		if s := str(m, "summary"); s != "" {
			evs = []Event{{Type: TypeStatus, Phase: "summary", Text: short(s, detailLimit)}}
		}
	case "auth_status":
		evs = authStatus(m)
	case "keep_alive":
		evs = []Event{}
	}
	if evs == nil {
		return []Event{rawJSON(b)}
	}
	return evs
}

// subagentOf is the subagent a line belongs to (its parent_tool_use_id),
// a copy for one event; nil for the main agent. A parent the stream never
// showed starting is taken as a subagent with what the line says of it.
func (p *claudeParser) subagentOf(m map[string]any) *Subagent {
	id := str(m, "parent_tool_use_id")
	if id == "" {
		return nil
	}
	s := p.subagents[id]
	if s == nil {
		s = p.addSubagent(id, str(m, "subagent_type"), str(m, "task_description"))
	}
	if s.Type == "" {
		s.Type = short(str(m, "subagent_type"), inputLimit)
	}
	if s.Description == "" {
		s.Description = short(str(m, "task_description"), inputLimit)
	}
	c := s.Subagent
	return &c
}

// addSubagent registers a subagent and counts it. Past maxTracked (a
// hostile stream) it is neither remembered nor counted.
func (p *claudeParser) addSubagent(id, typ, desc string) *claudeSubagent {
	s := &claudeSubagent{Subagent: Subagent{ID: short(id, inputLimit), Type: short(typ, inputLimit), Description: short(desc, inputLimit)}}
	if len(p.subagents) < maxTracked {
		p.subagents[id] = s
		p.res.Subagents++
	}
	return s
}

func (p *claudeParser) assistant(m map[string]any) []Event {
	msg := obj(m["message"])
	if msg == nil {
		return nil
	}
	content := list(msg, "content")
	// A failure Claude Code reports on an assistant line:
	// {"error":"authentication_failed","message":{"model":"<synthetic>",
	// "content":[{"type":"text","text":"Not logged in · Please run /login"}]}}.
	// Whether it ends the run, the result line says; until then it is held.
	// A synthetic message's text is the error's; a real one's is the model's
	// partial answer, which stays a message.
	evs := []Event{}
	if kind := str(m, "error"); kind != "" {
		synthetic := str(msg, "model") == "<synthetic>"
		p.held.hold(p.assistantFailure(m, kind, synthetic, content))
		if synthetic {
			return evs
		}
	} else {
		evs = append(evs, p.held.recover()...) // the agent went on: that was not the end
	}
	sub := p.subagentOf(m)
	if s := str(msg, "content"); s != "" {
		return append(evs, Event{Type: TypeMessage, Role: "assistant", Text: s, Subagent: sub})
	}
	if content == nil && len(evs) == 0 && str(m, "error") == "" {
		return nil
	}
	id := str(msg, "id")
	for _, c := range content {
		block := obj(c)
		switch t := str(block, "type"); t {
		case "text":
			text := str(block, "text")
			if text == "" {
				continue
			}
			if sub == nil { // a subagent's text is progress, not the answer
				if id != "" && id == p.lastMsg && p.res.FinalMessage != "" {
					p.res.FinalMessage = keepTail(p.res.FinalMessage + "\n\n" + text)
				} else {
					p.res.FinalMessage, p.lastMsg = keepTail(text), id
				}
			}
			evs = append(evs, Event{Type: TypeMessage, Role: "assistant", Text: text, Subagent: sub})
		case "thinking":
			evs = append(evs, Event{Type: TypeStatus, Phase: "thinking", Text: short(str(block, "thinking"), detailLimit), Subagent: sub})
		case "redacted_thinking":
			evs = append(evs, Event{Type: TypeStatus, Phase: "thinking", Subagent: sub})
		case "tool_use", "server_tool_use":
			evs = append(evs, p.toolUse(block, sub)...)
		case "tool_result":
			evs = append(evs, p.toolResult(block, m, sub)...)
		default:
			if strings.HasSuffix(t, "_tool_result") && str(block, "tool_use_id") != "" {
				evs = append(evs, p.serverToolResult(block, sub))
				continue
			}
			evs = append(evs, rawValue(c))
		}
	}
	return evs
}

// assistantFailure reads the failure of an assistant line with an error:
// the sentence is error_details (the CLI's explanation, as for
// max_output_tokens), or the synthetic message's text, or the kind's default
// sentence. A real message's content is the model's partial answer, not an
// explanation, so it stays a message.
func (p *claudeParser) assistantFailure(m map[string]any, kind string, synthetic bool, content []any) failure {
	f := failure{kind: claudeErrorKind(kind)}
	if f.kind == FailureUnknown {
		if k := statusKind(count(m, "api_error_status")); k != "" {
			f.kind = k
		}
	}
	text := str(m, "error_details")
	if text == "" {
		text = str(m, "api_error")
	}
	if text == "" && synthetic {
		text = blockText(content)
	}
	f.text = short(orDefault(text, f.kind), detailLimit)
	return f
}

func (p *claudeParser) user(m map[string]any) []Event {
	msg := obj(m["message"])
	if msg == nil {
		return nil
	}
	evs := append([]Event{}, p.held.recover()...)
	sub := p.subagentOf(m)
	if s := str(msg, "content"); s != "" {
		return append(evs, Event{Type: TypeMessage, Role: "user", Text: s, Subagent: sub})
	}
	content := list(msg, "content")
	if content == nil && len(evs) == 0 {
		return nil
	}
	for _, c := range content {
		block := obj(c)
		switch str(block, "type") {
		case "tool_result":
			evs = append(evs, p.toolResult(block, m, sub)...)
		case "text":
			if text := str(block, "text"); text != "" {
				evs = append(evs, Event{Type: TypeMessage, Role: "user", Text: text, Subagent: sub})
			}
		default:
			evs = append(evs, rawValue(c))
		}
	}
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
