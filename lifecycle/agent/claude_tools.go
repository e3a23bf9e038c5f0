package agent

import (
	"strings"
)

// Claude Code's tool calls and their results: the running tool, its end,
// the files it changed (with the edit's patch), a refusal, and the Agent
// calls that start and end subagents.

// toolUse maps a tool call: subagent_started for an Agent call, else a
// running tool.
func (p *claudeParser) toolUse(block map[string]any, sub *Subagent) []Event {
	name := short(strings.ToLower(str(block, "name")), inputLimit)
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
