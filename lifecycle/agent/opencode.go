package agent

import (
	"regexp"
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
// That is the 1.x `run`. The 2.0 CLI prints the same line types with other
// shapes inside: a tool part's call id is "id" (not "callID"), an error is
// {"type","message","status"?}, and no "done" line ends the run. The parser
// reads each line by its shape, so it needs no version flag. See FORMATS.md
// for the versions this was read from.
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
	return &openCodeParser{dir: dirOr(a.Dir), shown: map[string]string{}, subagents: map[string]bool{}}
}

type openCodeParser struct {
	dir       string
	res       Result
	held      held
	stepText  bool              // the current step has text, which FinalMessage holds
	lastText  string            // the part id of the last text, which a continuation shares
	shown     map[string]string // call id → the input summary shown as running
	subagents map[string]bool   // call ids of task calls shown as started
	denial    *failure          // a permission refused, with nothing after it yet
}

var (
	_ Parser   = (*openCodeParser)(nil)
	_ Finisher = (*openCodeParser)(nil)
)

// Result is what the stream said so far. OpenCode prints no final line, so
// an error that nothing followed is the run's failure; so is a permission
// the run refused (which interrupts the session) when nothing followed it.
func (p *openCodeParser) Result() Result {
	r := p.res
	r.FinalMessage = strings.TrimSpace(r.FinalMessage)
	r.Usage = r.Usage.clone()
	if f, ok := p.held.first(); ok {
		r.setFailure(f)
	} else if p.denial != nil {
		r.setFailure(*p.denial)
	}
	return r
}

// Finish reports the errors the stream ended on, or the refused permission
// it ended at.
func (p *openCodeParser) Finish() []Event {
	f, ok := p.held.first()
	switch {
	case ok:
		evs := make([]Event, 0, len(p.held.errs))
		for _, h := range p.held.errs {
			evs = append(evs, h.event(TypeError))
		}
		p.held.errs = nil
		p.res.setFailure(f)
		p.denial = nil
		return evs
	case p.denial != nil:
		f = *p.denial
		p.denial = nil
		p.res.setFailure(f)
		return []Event{f.event(TypeError)}
	}
	return nil
}

// permissionLine is the warning the 2.0 `run` prints on stdout, in colour,
// when it rejects a permission it cannot ask anyone about.
var permissionLine = regexp.MustCompile(`^!\s*permission requested: (.*?)(?: \((.*)\))?; auto-rejecting$`)

func (p *openCodeParser) Parse(line []byte) []Event {
	b, v, ok := decode(line)
	if b == nil {
		return nil
	}
	if !ok {
		text := plain(b)
		if m := permissionLine.FindStringSubmatch(text); m != nil {
			tool := short(strings.ToLower(m[1]), inputLimit)
			p.res.PermissionDenials++
			p.denial = &failure{kind: FailurePermissionDenied, text: short(sentence(FailurePermissionDenied)+": "+m[1], detailLimit)}
			return []Event{{Type: TypePermissionDenied, Tool: tool, Input: short(m[2], inputLimit),
				Text: "rejected: a run without --auto cannot ask anyone for permission"}}
		}
		return []Event{logEvent(b)}
	}
	m := obj(v)
	if m == nil {
		return []Event{rawJSON(b)}
	}
	var evs []Event
	if id := str(m, "sessionID"); id != "" && p.res.SessionID == "" {
		p.res.SessionID = short(id, inputLimit)
		evs = append(evs, Event{Type: TypeStatus, Phase: "session", Text: "session " + p.res.SessionID})
	}
	part := obj(m["part"])
	typ := str(m, "type")
	switch typ {
	case "step_start", "text", "reasoning", "tool_use", "step_finish":
		if part != nil {
			// The agent went on: the errors before were not the end.
			evs = append(evs, p.held.recover()...)
			p.denial = nil
		}
	}
	switch typ {
	case "step_start":
		p.stepText = false
		return append(evs, Event{Type: TypeStatus, Phase: "step"})
	case "text":
		if part == nil {
			break
		}
		return append(evs, p.text(part)...)
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
		u := p.res.Usage.clone()
		return append(evs, Event{Type: TypeUsage, Usage: &u})
	case "error":
		p.held.hold(openCodeFailure(m["error"]))
		if evs == nil {
			evs = []Event{}
		}
		return evs
	case "done":
		// {"type":"done","reason":"idle","rejected":[…]} (1.x): the session went
		// idle; rejected names permissions the run refused.
		ev := Event{Type: TypeStatus, Phase: "idle"}
		var rejected []string
		for _, r := range list(m, "rejected") {
			if s, ok := r.(string); ok && len(rejected) < maxHeld {
				rejected = append(rejected, s)
				p.res.PermissionDenials++
				evs = append(evs, Event{Type: TypePermissionDenied, Tool: short(s, inputLimit), Text: "rejected by the run"})
			}
		}
		if len(rejected) > 0 {
			ev.Text = short("rejected permissions: "+strings.Join(rejected, ", "), detailLimit)
		}
		return append(evs, ev)
	}
	return append(evs, rawJSON(b))
}

// text maps a text part. Texts of one step are the answer so far, joined by
// a blank line; a text with the part id of the one before continues it
// (a CLI that streams a text in pieces), so it joins without one.
func (p *openCodeParser) text(part map[string]any) []Event {
	text := str(part, "text")
	id := str(part, "id")
	if text == "" {
		return []Event{}
	}
	switch {
	case id != "" && id == p.lastText && p.stepText:
		p.res.FinalMessage += text
	case p.stepText:
		p.res.FinalMessage += "\n\n" + text
	default:
		p.res.FinalMessage, p.stepText = text, true
	}
	p.res.FinalMessage = keepTail(p.res.FinalMessage)
	p.lastText = id
	return []Event{{Type: TypeMessage, Role: "assistant", Text: text}}
}
