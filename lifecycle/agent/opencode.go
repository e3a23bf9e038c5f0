package agent

import (
	"encoding/json"
	"strings"
)

// OpenCode is the adapter for the OpenCode CLI (npm opencode-ai), run as
// `opencode run --format json`, which prints one JSON object a line:
//
//	{"type":"step_start","timestamp":…,"sessionID":"ses_…","part":{"type":"step-start",…}}
//	{"type":"text",…,"part":{"type":"text","text":"…","time":{…}}}
//	{"type":"tool_use",…,"part":{"type":"tool","tool":"write","callID":"…","state":{"status":"completed","input":{…},"output":"…"}}}
//	{"type":"step_finish",…,"part":{"type":"step-finish","reason":"stop","cost":0.01,"tokens":{"input":…,"output":…,"reasoning":…,"cache":{"read":…,"write":…}}}}
//	{"type":"error",…,"error":{"name":"APIError","data":{"message":"…"}}}
//
// See FORMATS.md for the versions this was read from.
type OpenCode struct {
	// Dir is the directory the agent runs in: file paths under it are
	// reported relative to it. Empty means AppDir.
	Dir string
}

var _ Adapter = OpenCode{}

func (OpenCode) Name() string   { return "opencode" }
func (OpenCode) Binary() string { return "opencode" }

// Command is `opencode run --format json --auto [--model provider/model] -- prompt`.
// --auto makes the run answer every permission request that no rule
// denies with "once"; without it `opencode run` rejects them all (the
// shell in a new directory, a path outside the project).
func (OpenCode) Command(prompt, model string) []string {
	argv := []string{"opencode", "run", "--format", "json", "--auto"}
	if model != "" {
		argv = append(argv, "--model", model)
	}
	return append(argv, "--", prompt)
}

// Env allows edits, the shell and web fetches outright, whatever a project's
// opencode.json says (OPENCODE_PERMISSION is merged over every config file),
// and turns off what would reach out on its own: the self-update (the
// binary is in the read-only image) and language-server downloads.
func (OpenCode) Env() map[string]string {
	return map[string]string{
		"OPENCODE_PERMISSION":           `{"bash":"allow","edit":"allow","webfetch":"allow"}`,
		"OPENCODE_DISABLE_AUTOUPDATE":   "1",
		"OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
	}
}

func (a OpenCode) NewParser() Parser {
	return &openCodeParser{dir: dirOr(a.Dir), shown: map[string]string{}}
}

type openCodeParser struct {
	dir      string
	res      Result
	stepText bool              // the current step has text, which FinalMessage holds
	shown    map[string]string // callID → the input summary shown as running
}

func (p *openCodeParser) Result() Result { return p.res }

func (p *openCodeParser) Parse(line []byte) []Event {
	b, v, ok := decode(line)
	if b == nil {
		return nil
	}
	if !ok {
		return []Event{rawText(b)}
	}
	m := obj(v)
	if m == nil {
		return []Event{rawJSON(b)}
	}
	var evs []Event
	if id := str(m, "sessionID"); id != "" && p.res.SessionID == "" {
		p.res.SessionID = id
		evs = append(evs, Event{Type: TypeStatus, Phase: "session", Text: "session " + id})
	}
	part := obj(m["part"])
	switch str(m, "type") {
	case "step_start":
		p.stepText = false
		return append(evs, Event{Type: TypeStatus, Phase: "step"})
	case "text":
		if part == nil {
			break
		}
		text := str(part, "text")
		if text == "" {
			return evs
		}
		if p.stepText {
			p.res.FinalMessage = appendFinal(p.res.FinalMessage, text)
		} else {
			p.res.FinalMessage, p.stepText = finalMessage(text), true
		}
		return append(evs, Event{Type: TypeMessage, Role: "assistant", Text: text})
	case "reasoning":
		if part == nil {
			break
		}
		return append(evs, Event{Type: TypeStatus, Phase: "thinking", Text: short(str(part, "text"), detailLimit)})
	case "tool_use":
		if tool := p.tool(part); tool != nil {
			return append(evs, tool...)
		}
	case "step_finish":
		if part == nil {
			break
		}
		p.addUsage(part)
		u := p.res.Usage
		return append(evs, Event{Type: TypeUsage, Usage: &u})
	case "error":
		msg := errorText(m["error"])
		p.res.fail(msg)
		return append(evs, Event{Type: TypeError, Text: msg})
	case "done":
		// {"type":"done","reason":"idle","rejected":[…]}: the session went
		// idle; rejected names permissions the run refused.
		ev := Event{Type: TypeStatus, Phase: "idle"}
		var rejected []string
		for _, r := range list(m, "rejected") {
			if s, ok := r.(string); ok {
				rejected = append(rejected, s)
			}
		}
		if len(rejected) > 0 {
			ev.Text = "rejected permissions: " + strings.Join(rejected, ", ")
		}
		return append(evs, ev)
	}
	return append(evs, rawJSON(b))
}

// tool maps a tool part, or returns nil when the part is not one.
// `opencode run` prints a tool part once it completed or failed; a pending
// or running state, which the server's own event stream has, is shown
// once per call and input.
func (p *openCodeParser) tool(part map[string]any) []Event {
	state := obj(part["state"])
	name := strings.ToLower(str(part, "tool"))
	if state == nil || name == "" {
		return nil
	}
	summary, changed := summarize(name, obj(state["input"]), p.dir)
	ev := Event{Type: TypeTool, Tool: name, Input: summary}
	switch str(state, "status") {
	case "pending", "running":
		id := str(part, "callID")
		if prev, ok := p.shown[id]; ok && prev == summary {
			return []Event{}
		}
		if len(p.shown) >= maxTracked {
			clear(p.shown) // at worst a call shows running twice
		}
		p.shown[id] = summary
		ev.Status = ToolRunning
		return []Event{ev}
	case "completed":
		ev.Status = ToolCompleted
		return append([]Event{ev}, fileEvents(changed)...)
	case "error":
		ev.Status = ToolError
		ev.Text = short(str(state, "error"), detailLimit)
		return []Event{ev}
	}
	return nil
}

// addUsage adds a step's tokens and cost to the run's totals. OpenCode
// counts reasoning apart from output; both are output tokens here.
func (p *openCodeParser) addUsage(part map[string]any) {
	tokens := obj(part["tokens"])
	cache := obj(tokens["cache"])
	u := &p.res.Usage
	u.InputTokens += count(tokens, "input")
	u.OutputTokens += count(tokens, "output") + count(tokens, "reasoning")
	u.CacheReadTokens += count(cache, "read")
	u.CacheWriteTokens += count(cache, "write")
	if c := number(part, "cost"); c > 0 {
		u.CostUSD += c
	}
}

// errorText is the message of an OpenCode error: a string, a named error
// {"name":"APIError","data":{"message":…}}, or (later versions)
// {"type":"provider.rate-limit","message":…}.
func errorText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	e := obj(v)
	if e == nil {
		return "unknown error"
	}
	label := str(e, "name")
	if label == "" {
		label = str(e, "type")
	}
	msg := str(obj(e["data"]), "message")
	if msg == "" {
		msg = str(e, "message")
	}
	switch {
	case label != "" && msg != "":
		return label + ": " + msg
	case msg != "":
		return msg
	case label != "":
		return label
	}
	b, _ := json.Marshal(e)
	return string(b)
}
