package agent

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// result maps the last line of a run:
//
//	{"type":"result","subtype":"success"|"error_during_execution"|"error_max_turns"|…,
//	 "is_error":false,"result":"…","usage":{…},"modelUsage":{"<model>":{…}},
//	 "total_cost_usd":0.06,"permission_denials":[…],"terminal_reason":"completed",
//	 "errors":[…],"api_error_status":null,"num_turns":6}
//
// It decides the run: errors held back until now were recovered from when
// it succeeded, and explain the failure when it did not.
func (p *claudeParser) result(m map[string]any) []Event {
	p.resultSeen = true
	p.res.Usage = claudeUsage(m)
	if p.res.SessionID == "" {
		p.res.SessionID = str(m, "session_id")
	}
	var evs []Event
	for _, d := range list(m, "permission_denials") {
		den := obj(d)
		name := strings.ToLower(str(den, "tool_name"))
		summary, _ := summarize(name, obj(den["tool_input"]), p.dir)
		evs = append(evs, p.deny(str(den, "tool_use_id"), short(name, inputLimit), summary, "", nil)...)
	}
	u := p.res.Usage.clone()
	evs = append(evs, Event{Type: TypeUsage, Usage: &u})
	// subtype "success" with is_error true is how an API failure ends
	// (a refused key, a rate limit): is_error decides, subtype adds to it.
	subtype := str(m, "subtype")
	if !boolean(m, "is_error") && (subtype == "" || subtype == "success") {
		if text := str(m, "result"); text != "" {
			p.res.FinalMessage = text
		}
		p.res.clearFailure()
		return append(evs, p.held.recover()...)
	}
	f := p.resultFailure(m, subtype)
	// Held errors that say something else than the failure went before it.
	for _, h := range p.held.errs {
		if h.text != f.text {
			evs = append(evs, h.event(TypeWarning))
		}
	}
	p.held.errs = nil
	p.res.setFailure(f)
	return append(evs, f.event(TypeError))
}

// resultFailure is why a failed result failed: the terminal_reason or
// subtype when it names a cause (an interrupt, the turn limit), else the
// error the run reported last, else the HTTP status of the failed API call.
// The sentence is the CLI's own when it wrote one for a person: internal
// diagnostics ("[ede_diagnostic] …") are not.
func (p *claudeParser) resultFailure(m map[string]any, subtype string) failure {
	held, hasHeld := p.held.first()
	kind := claudeTerminalKind(str(m, "terminal_reason"), subtype)
	if kind == "" && hasHeld {
		return held
	}
	if kind == "" {
		kind = statusKind(count(m, "api_error_status"))
	}
	if kind == "" {
		kind = FailureUnknown
	}
	text := str(m, "result")
	if internalNote(text) {
		text = ""
	}
	if text == "" {
		var errs []string
		for _, e := range list(m, "errors") {
			if s, ok := e.(string); ok && s != "" && !internalNote(s) {
				errs = append(errs, s)
			}
		}
		text = strings.Join(errs, "; ")
	}
	if text == "" && kind == FailureMaxTurns {
		if n := count(m, "num_turns"); n > 0 {
			text = sentence(kind) + " (" + strconv.FormatInt(n, 10) + ")"
		}
	}
	return failure{kind: kind, text: short(orDefault(text, kind), detailLimit)}
}

// claudeUsage is the whole run's usage. modelUsage covers every model call
// (subagents, the small model's auxiliary calls); usage covers only the
// main loop, so it is read only when modelUsage is missing. The cost is
// total_cost_usd, as reported.
func claudeUsage(m map[string]any) Usage {
	u := Usage{CostUSD: max(number(m, "total_cost_usd"), 0)}
	var modelCost float64
	models := obj(m["modelUsage"])
	names := slices.Sorted(maps.Keys(models))
	for _, name := range names[:min(len(names), maxModels)] {
		mu := obj(models[name])
		if mu == nil {
			continue
		}
		one := ModelUsage{
			InputTokens:      count(mu, "inputTokens"),
			OutputTokens:     count(mu, "outputTokens"),
			CacheReadTokens:  count(mu, "cacheReadInputTokens"),
			CacheWriteTokens: count(mu, "cacheCreationInputTokens"),
			CostUSD:          max(number(mu, "costUSD"), 0),
		}
		if u.Models == nil {
			u.Models = map[string]ModelUsage{}
		}
		u.Models[short(name, inputLimit)] = one
		u.InputTokens += one.InputTokens
		u.OutputTokens += one.OutputTokens
		u.CacheReadTokens += one.CacheReadTokens
		u.CacheWriteTokens += one.CacheWriteTokens
		modelCost += one.CostUSD
	}
	if u.Models == nil {
		usage := obj(m["usage"])
		u.InputTokens = count(usage, "input_tokens")
		u.OutputTokens = count(usage, "output_tokens")
		u.CacheReadTokens = count(usage, "cache_read_input_tokens")
		u.CacheWriteTokens = count(usage, "cache_creation_input_tokens")
	}
	if u.CostUSD == 0 {
		u.CostUSD = modelCost
	}
	return u
}

// maxModels bounds the split by model: a run uses a handful, and a stream
// that names thousands could overflow the sums.
const maxModels = 32
