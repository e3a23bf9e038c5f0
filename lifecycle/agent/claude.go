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
// bypass mode as root unless IS_SANDBOX=1; sandboxd runs it as uid 1000.
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

// addSubagent registers a subagent and counts it.
func (p *claudeParser) addSubagent(id, typ, desc string) *claudeSubagent {
	s := &claudeSubagent{Subagent: Subagent{ID: short(id, inputLimit), Type: short(typ, inputLimit), Description: short(desc, inputLimit)}}
	if len(p.subagents) < maxTracked {
		p.subagents[id] = s
	}
	p.res.Subagents++
	return s
}

func (p *claudeParser) assistant(m map[string]any) []Event {
	msg := obj(m["message"])
	if msg == nil {
		return nil
	}
	content := list(msg, "content")
	var evs []Event
	// A failure Claude Code reports on an assistant line:
	// {"error":"authentication_failed","message":{"model":"<synthetic>",
	// "content":[{"type":"text","text":"Not logged in · Please run /login"}]}}.
	// Whether it ends the run, the result line says; until then it is held.
	synthetic := str(msg, "model") == "<synthetic>"
	if kind := str(m, "error"); kind != "" {
		p.held.hold(p.assistantFailure(m, kind, synthetic, content))
		if synthetic {
			return []Event{}
		}
	} else {
		// The agent went on: what it reported before was not the end.
		evs = p.held.recover()
	}
	sub := p.subagentOf(m)
	if s := str(msg, "content"); s != "" {
		return append(evs, Event{Type: TypeMessage, Role: "assistant", Text: s, Subagent: sub})
	}
	if content == nil {
		if evs == nil && str(m, "error") != "" {
			return []Event{}
		}
		return evs
	}
	id := str(msg, "id")
	if evs == nil {
		evs = []Event{}
	}
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
					p.res.FinalMessage, p.lastMsg = text, id
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

// toolUse maps a tool call: subagent_started for an Agent call, else a
// running tool.
func (p *claudeParser) toolUse(block map[string]any, sub *Subagent) []Event {
	name := strings.ToLower(str(block, "name"))
	input := obj(block["input"])
	id := str(block, "id")
	summary, changed := summarize(name, input, p.dir)
	if id != "" && len(p.tools) < maxTracked {
		p.tools[id] = claudeTool{name: name, input: summary, changed: changed}
	}
	if subagentTools[name] && id != "" {
		if s := p.subagents[id]; s != nil { // task_started came first
			return []Event{}
		}
		s := p.addSubagent(id, str(input, "subagent_type"), str(input, "description"))
		c := s.Subagent
		return []Event{{Type: TypeSubagentStarted, Subagent: &c, Text: short(str(input, "prompt"), detailLimit)}}
	}
	return []Event{{Type: TypeTool, Tool: name, Input: summary, Status: ToolRunning, Subagent: sub}}
}

// serverToolResult maps the result block of a tool the API ran itself
// (advisor_tool_result, web_search_tool_result, …) to the end of its call.
func (p *claudeParser) serverToolResult(block map[string]any, sub *Subagent) Event {
	id := str(block, "tool_use_id")
	call := p.tools[id]
	delete(p.tools, id)
	ev := Event{Type: TypeTool, Tool: call.name, Input: call.input, Status: ToolCompleted, Subagent: sub}
	c := obj(block["content"])
	if strings.HasSuffix(str(c, "type"), "_error") {
		ev.Status = ToolError
		ev.Text = short(orString(str(c, "error_code"), str(c, "type")), detailLimit)
	} else if t := str(c, "text"); t != "" {
		ev.Text = short(t, detailLimit) // the advisor's advice
	}
	return ev
}

func (p *claudeParser) user(m map[string]any) []Event {
	msg := obj(m["message"])
	if msg == nil {
		return nil
	}
	evs := p.held.recover()
	sub := p.subagentOf(m)
	if s := str(msg, "content"); s != "" {
		return append(evs, Event{Type: TypeMessage, Role: "user", Text: s, Subagent: sub})
	}
	content := list(msg, "content")
	if content == nil {
		return evs
	}
	if evs == nil {
		evs = []Event{}
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

// toolResult maps a tool_result block to the end of its tool call: a
// finished subagent for an Agent call; else the tool's end, then a
// permission_denied when the CLI refused the call, or file_changed events
// (with the edit's patch) when a file tool succeeded: a failed edit changed
// nothing. line is the user line, whose tool_use_result holds the patch.
func (p *claudeParser) toolResult(block, line map[string]any, sub *Subagent) []Event {
	id := str(block, "tool_use_id")
	call := p.tools[id]
	delete(p.tools, id)
	isErr := boolean(block, "is_error")
	text, ok := block["content"].(string)
	if !ok {
		text = blockText(list(block, "content"))
	}
	if s := p.subagents[id]; s != nil {
		status := SubagentCompleted
		if isErr {
			status = SubagentFailed
		}
		return p.finishSubagent(s, status, text)
	}
	ev := Event{Type: TypeTool, Tool: call.name, Input: call.input, Status: ToolCompleted, Subagent: sub}
	if isErr {
		ev.Status = ToolError
		ev.Text = short(text, detailLimit)
		evs := []Event{ev}
		if deniedResult(id, text, line["tool_result_meta"]) {
			evs = append(evs, p.deny(id, call.name, call.input, text, sub)...)
		}
		return evs
	}
	var patch string
	if r := obj(line["tool_use_result"]); r != nil && len(call.changed) == 1 {
		patch = structuredPatch(call.changed[0], list(r, "structuredPatch"))
	}
	return append([]Event{ev}, fileEvents(call.changed, patch, sub)...)
}

// finishSubagent ends a subagent once: the end can be told twice (a
// task_notification, then the Agent call's tool_result).
func (p *claudeParser) finishSubagent(s *claudeSubagent, status, text string) []Event {
	if s.finished {
		return []Event{}
	}
	s.finished = true
	c := s.Subagent
	return []Event{{Type: TypeSubagentFinished, Subagent: &c, Status: status, Text: short(text, detailLimit)}}
}

// deny reports a tool call the CLI refused, once per call.
func (p *claudeParser) deny(id, tool, input, text string, sub *Subagent) []Event {
	if id != "" {
		if p.denied[id] {
			return nil
		}
		if len(p.denied) < maxTracked {
			p.denied[id] = true
		}
	}
	p.res.PermissionDenials++
	return []Event{{Type: TypePermissionDenied, Tool: tool, Input: input, Text: short(text, detailLimit), Subagent: sub}}
}

// deniedResult reports a failed tool result that is a permission denial:
// tool_result_meta marks it so, or its text is one of Claude Code's refusals.
// tool_result_meta's shape is not documented; an entry for the call with a
// permission flag or kind is read as a denial (see FORMATS.md).
func deniedResult(id, text string, meta any) bool {
	entries, ok := meta.([]any)
	if !ok && meta != nil {
		entries = []any{meta}
	}
	for _, e := range entries {
		m := obj(e)
		if m == nil || (str(m, "tool_use_id") != "" && str(m, "tool_use_id") != id) {
			continue
		}
		for k, v := range m {
			switch v := v.(type) {
			case bool:
				if v && strings.Contains(strings.ToLower(k), "permission") {
					return true
				}
			case string:
				if k != "tool_use_id" && strings.HasPrefix(strings.ToLower(v), "permission_den") {
					return true
				}
			}
		}
	}
	for _, s := range deniedTexts {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// deniedTexts are how Claude Code words a refused tool call in its result.
var deniedTexts = []string{
	"requested permissions to",          // "Claude requested permissions to write to …, but you haven't granted it yet."
	"Permission to use",                 // "Permission to use Bash has been denied …"
	"doesn't want to proceed with this", // a refusal in -p mode with a permission prompt tool
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
