package agent

import (
	"strings"
)

// tool maps a tool part, or returns nil when the part is not one.
// `opencode run` prints a tool part once it completed or failed; a pending
// or running state, which the server's own event stream has, is shown
// once per call and input. A task call starts a subagent, whose own steps
// happen in a child session that `run` does not print: only its start (when
// shown) and its end are seen.
func (p *openCodeParser) tool(part map[string]any) []Event {
	state := obj(part["state"])
	name := strings.ToLower(str(part, "tool"))
	if state == nil || name == "" {
		return nil
	}
	name = short(name, inputLimit)
	id := orString(str(part, "callID"), str(part, "id")) // 1.x, 2.0
	input := obj(state["input"])
	if subagentTools[name] && id != "" {
		return p.subagentTool(id, str(state, "status"), input, state)
	}
	summary, changed := summarize(name, input, p.dir)
	ev := Event{Type: TypeTool, Tool: name, Input: summary}
	switch str(state, "status") {
	case "pending", "running":
		if prev, ok := p.shown[id]; ok && prev == summary {
			return []Event{}
		}
		if len(p.shown) < maxTracked {
			p.shown[id] = summary
		}
		ev.Status = ToolRunning
		return []Event{ev}
	case "completed":
		delete(p.shown, id)
		ev.Status = ToolCompleted
		return append([]Event{ev}, fileEvents(changed, clipPatch(toolDiff(state)), nil)...)
	case "error":
		delete(p.shown, id)
		ev.Status = ToolError
		ev.Text = short(str(state, "error"), detailLimit)
		return []Event{ev}
	}
	return nil
}

// toolDiff is the diff an edit tool reports in its metadata: state.metadata
// in 1.x, state.metadata.metadata in 2.0 (which wraps the tool's own).
func toolDiff(state map[string]any) string {
	meta := obj(state["metadata"])
	if d := str(meta, "diff"); d != "" {
		return d
	}
	return str(obj(meta["metadata"]), "diff")
}

// subagentTool maps a task call: {"description","prompt","subagent_type"}.
func (p *openCodeParser) subagentTool(id, status string, input, state map[string]any) []Event {
	sub := &Subagent{ID: short(id, inputLimit), Type: short(str(input, "subagent_type"), inputLimit),
		Description: short(str(input, "description"), inputLimit)}
	started := p.subagents[id]
	if !started {
		if len(p.subagents) < maxTracked {
			p.subagents[id] = true
		}
		p.res.Subagents++
	}
	switch status {
	case "pending", "running":
		if started {
			return []Event{}
		}
		return []Event{{Type: TypeSubagentStarted, Subagent: sub, Text: short(str(input, "prompt"), detailLimit)}}
	case "completed":
		delete(p.subagents, id)
		return []Event{{Type: TypeSubagentFinished, Subagent: sub, Status: SubagentCompleted, Text: short(taskOutput(str(state, "output")), detailLimit)}}
	case "error":
		delete(p.subagents, id)
		return []Event{{Type: TypeSubagentFinished, Subagent: sub, Status: SubagentFailed, Text: short(str(state, "error"), detailLimit)}}
	}
	return nil
}

// taskOutput is a task tool's output without the metadata block OpenCode
// appends for the model (<task_metadata>session_id: …</task_metadata>).
func taskOutput(out string) string {
	if i := strings.Index(out, "<task_metadata>"); i >= 0 {
		out = out[:i]
	}
	return strings.TrimSpace(out)
}

// addUsage adds a step's tokens and cost to the run's totals. OpenCode
// counts reasoning apart from output; both are output tokens here. Sums
// saturate: a hostile stream cannot wrap them negative.
func (p *openCodeParser) addUsage(part map[string]any) {
	tokens := obj(part["tokens"])
	cache := obj(tokens["cache"])
	u := &p.res.Usage
	u.InputTokens = sat(u.InputTokens, count(tokens, "input"))
	u.OutputTokens = sat(u.OutputTokens, sat(count(tokens, "output"), count(tokens, "reasoning")))
	u.CacheReadTokens = sat(u.CacheReadTokens, count(cache, "read"))
	u.CacheWriteTokens = sat(u.CacheWriteTokens, count(cache, "write"))
	if c := number(part, "cost"); c > 0 && c < 1e12 {
		u.CostUSD += c
	}
}

// sat is a + b, at most 1<<62; both are counts (≥ 0).
func sat(a, b int64) int64 {
	const top = 1 << 62
	if a > top-b {
		return top
	}
	return a + b
}
