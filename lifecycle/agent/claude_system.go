package agent

import (
	"strconv"
	"strings"
)

// Claude Code's system lines: the session, the CLI's own status and hooks,
// and the lifecycle of tasks, which is how subagents report progress.

func (p *claudeParser) system(m map[string]any) []Event {
	switch str(m, "subtype") {
	case "init":
		id := str(m, "session_id")
		p.res.SessionID = id
		text := "session " + id
		if model := str(m, "model"); model != "" {
			text += ", model " + model
		}
		return []Event{{Type: TypeStatus, Phase: "session", Text: short(text, detailLimit)}}
	case "api_retry":
		return []Event{{Type: TypeStatus, Phase: "retry", Text: retryText(m)}}
	case "compact_boundary":
		return []Event{{Type: TypeStatus, Phase: "compacting"}}
	case "status":
		return statusLine(m)
	case "hook_started", "hook_progress", "hook_response":
		return hookLine(m)
	case "thinking_tokens":
		return []Event{{Type: TypeStatus, Phase: "thinking", Text: strconv.FormatInt(count(m, "estimated_tokens"), 10) + " tokens"}}
	case "informational":
		text := short(str(m, "content"), detailLimit)
		if str(m, "level") == "warning" {
			return []Event{{Type: TypeWarning, Text: text}}
		}
		return []Event{{Type: TypeStatus, Phase: "info", Text: text}}
	case "notification":
		return []Event{{Type: TypeStatus, Phase: "notification", Text: short(str(m, "text"), detailLimit)}}
	case "session_state_changed":
		if s := str(m, "state"); s != "" {
			return []Event{{Type: TypeStatus, Phase: short(s, 40)}}
		}
	case "model_refusal_fallback", "model_refusal_no_fallback", "mirror_error":
		return []Event{{Type: TypeWarning, Text: short(orString(str(m, "content"), str(m, "error")), detailLimit)}}
	case "permission_denied":
		id := str(m, "tool_use_id")
		call := p.tools[id]
		tool := orString(call.name, strings.ToLower(str(m, "tool_name")))
		evs := p.deny(id, short(tool, inputLimit), call.input, orString(str(m, "message"), str(m, "decision_reason")), p.subagentByAgentID(m))
		if evs == nil {
			return []Event{}
		}
		return evs
	case "background_tasks_changed", "commands_changed":
		// Bookkeeping for an interactive host; the task_* lines say the same.
		return []Event{}
	case "task_started":
		return p.taskStarted(m)
	case "task_progress":
		return p.taskProgress(m)
	case "task_updated":
		return p.taskUpdated(m)
	case "task_notification":
		return p.taskNotification(m)
	}
	return nil
}

func retryText(m map[string]any) string {
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
	return short(text, detailLimit)
}

// statusLine maps {"subtype":"status","status":"requesting"|"compacting"|null,
// "compact_result":…}: a request to the model, a compaction, or the end of
// one (nothing to show unless it failed).
func statusLine(m map[string]any) []Event {
	if s := str(m, "status"); s != "" {
		return []Event{{Type: TypeStatus, Phase: short(s, 40)}}
	}
	if str(m, "compact_result") == "failed" {
		return []Event{{Type: TypeWarning, Reason: FailureContext,
			Text: short("compacting the conversation failed: "+orString(str(m, "compact_error"), "no reason given"), detailLimit)}}
	}
	return []Event{}
}

// hookLine maps the hook lines: a hook that started, printed, or ended.
// A hook that failed is a warning; the run goes on unless it stops it.
func hookLine(m map[string]any) []Event {
	name := orString(str(m, "hook_name"), str(m, "hook_event"))
	text := name
	switch str(m, "subtype") {
	case "hook_started":
		text += " started"
	case "hook_progress":
		if out := orString(str(m, "output"), str(m, "stdout")); out != "" {
			text += ": " + out
		}
	case "hook_response":
		switch str(m, "outcome") {
		case "error":
			detail := orString(str(m, "stderr"), str(m, "output"))
			if c := count(m, "exit_code"); c != 0 {
				detail = "exit " + strconv.FormatInt(c, 10) + " " + detail
			}
			return []Event{{Type: TypeWarning, Reason: FailureHook, Text: short("hook "+name+" failed: "+detail, detailLimit)}}
		case "cancelled":
			text += " cancelled"
		default:
			text += " done"
		}
	}
	return []Event{{Type: TypeStatus, Phase: "hook", Text: short(text, detailLimit)}}
}

// toolProgress maps a heartbeat of a long tool call.
func (p *claudeParser) toolProgress(m map[string]any) []Event {
	name := short(strings.ToLower(str(m, "tool_name")), inputLimit)
	if name == "" {
		return nil
	}
	text := name + " running for " + strconv.FormatInt(count(m, "elapsed_time_seconds"), 10) + " s"
	return []Event{{Type: TypeStatus, Phase: "tool", Tool: name, Text: text, Subagent: p.subagentOf(m)}}
}

// authStatus maps an auth_status line: a login in progress, or its error.
func authStatus(m map[string]any) []Event {
	if e := str(m, "error"); e != "" {
		return []Event{{Type: TypeWarning, Reason: FailureAuth, Text: short(e, detailLimit)}}
	}
	return []Event{{Type: TypeStatus, Phase: "auth"}}
}

// subagentByAgentID is the subagent a system line names by agent_id, when
// that is one the stream started (a permission denied inside a subagent).
func (p *claudeParser) subagentByAgentID(m map[string]any) *Subagent {
	if key, ok := p.tasks[str(m, "agent_id")]; ok {
		if s := p.subagents[key]; s != nil {
			c := s.Subagent
			return &c
		}
	}
	return nil
}

// Tasks are what Claude Code runs beside the main loop: subagents
// (task_type local_agent, with a subagent_type), background shells
// (local_bash), workflows. A subagent's task lines become subagent events;
// the others are status lines.

// taskSubagent finds the subagent a task line is about, by its tool_use_id
// or its task_id, or nil when the task is no subagent.
func (p *claudeParser) taskSubagent(m map[string]any) *claudeSubagent {
	if id := str(m, "tool_use_id"); id != "" {
		if s := p.subagents[id]; s != nil {
			return s
		}
	}
	if key, ok := p.tasks[str(m, "task_id")]; ok {
		return p.subagents[key]
	}
	return nil
}

func (p *claudeParser) taskStarted(m map[string]any) []Event {
	taskID, id := str(m, "task_id"), str(m, "tool_use_id")
	typ := str(m, "subagent_type")
	s := p.taskSubagent(m)
	if s == nil && typ == "" && str(m, "task_type") != "local_agent" {
		return taskStatus("started", str(m, "description"))
	}
	key := orString(id, "task:"+taskID)
	if taskID != "" && len(p.tasks) < maxTracked {
		p.tasks[taskID] = key
	}
	if s != nil { // its Agent call came first: fill in what it did not say
		if s.Type == "" {
			s.Type = short(typ, inputLimit)
		}
		if s.Description == "" {
			s.Description = short(str(m, "description"), inputLimit)
		}
		return []Event{}
	}
	s = p.addSubagent(key, typ, str(m, "description"))
	c := s.Subagent
	return []Event{{Type: TypeSubagentStarted, Subagent: &c, Text: short(str(m, "prompt"), detailLimit)}}
}

func (p *claudeParser) taskProgress(m map[string]any) []Event {
	s := p.taskSubagent(m)
	text := orString(str(m, "summary"), str(m, "description"))
	if s == nil {
		return taskStatus("running", text)
	}
	c := s.Subagent
	return []Event{{Type: TypeSubagentProgress, Subagent: &c, Text: short(text, detailLimit),
		Tool: short(strings.ToLower(str(m, "last_tool_name")), inputLimit)}}
}

// taskUpdated maps a task's state change (patch): its end when the status
// is final, else a new description as progress.
func (p *claudeParser) taskUpdated(m map[string]any) []Event {
	patch := obj(m["patch"])
	s := p.taskSubagent(m)
	status := str(patch, "status")
	end := map[string]string{"completed": SubagentCompleted, "failed": SubagentFailed, "killed": SubagentStopped}[status]
	switch {
	case s == nil && (end != "" || str(patch, "description") != ""):
		return taskStatus(orString(status, "updated"), orString(str(patch, "error"), str(patch, "description")))
	case s == nil:
		return []Event{}
	case end != "":
		return p.finishSubagent(s, end, str(patch, "error"))
	case str(patch, "description") != "":
		c := s.Subagent
		return []Event{{Type: TypeSubagentProgress, Subagent: &c, Text: short(str(patch, "description"), detailLimit)}}
	}
	return []Event{}
}

// taskNotification maps a task's end and its summary.
func (p *claudeParser) taskNotification(m map[string]any) []Event {
	s := p.taskSubagent(m)
	status := str(m, "status")
	if s == nil {
		return taskStatus(orString(status, "ended"), str(m, "summary"))
	}
	end := map[string]string{"completed": SubagentCompleted, "failed": SubagentFailed, "stopped": SubagentStopped}[status]
	return p.finishSubagent(s, orString(end, SubagentCompleted), str(m, "summary"))
}

// taskStatus is a status line for a task that is no subagent.
func taskStatus(state, text string) []Event {
	t := state
	if text != "" {
		t += ": " + text
	}
	return []Event{{Type: TypeStatus, Phase: "task", Text: short(t, detailLimit)}}
}
