package agent

import (
	"strings"
)

// A failure is an error a CLI reported: its kind (a Failure constant), the
// sentence a person reads, and OpenCode's ref when there is one.
type failure struct {
	kind, text, ref string
}

// event is the failure as an event of type typ (error or warning). The ref
// goes into the text too, so that the live view keeps it.
func (f failure) event(typ string) Event {
	text := f.text
	if f.ref != "" {
		text += " (ref " + f.ref + ")"
	}
	return Event{Type: typ, Reason: f.kind, Text: text}
}

// sentences are said when a CLI gives a failure kind but no readable words.
var sentences = map[string]string{
	FailureAuth:             "the provider refused the credentials: set a valid API key for this agent",
	FailureBilling:          "the provider account has no credit left",
	FailureRateLimit:        "the provider's rate limit was reached: try again later",
	FailureInvalidRequest:   "the provider refused the request",
	FailureServer:           "the provider failed to answer: try again later",
	FailureMaxOutputTokens:  "the model's answer was longer than it may write in one response",
	FailureMaxTurns:         "the agent used all the turns it was allowed",
	FailureBudget:           "the agent spent all the budget it was allowed",
	FailureContext:          "the conversation grew too long for the model",
	FailureAborted:          "the run was interrupted before it finished",
	FailureHook:             "a hook stopped the run",
	FailurePermissionDenied: "the run stopped at a permission nobody could grant",
	FailureUnknown:          "the agent failed",
}

// sentence is the default sentence of kind.
func sentence(kind string) string {
	if s, ok := sentences[kind]; ok {
		return s
	}
	return sentences[FailureUnknown]
}

// statusKind maps an HTTP status a provider answered to a failure kind, or "".
func statusKind(code int64) string {
	switch {
	case code == 401 || code == 403:
		return FailureAuth
	case code == 402:
		return FailureBilling
	case code == 429:
		return FailureRateLimit
	case code == 413:
		return FailureContext
	case code >= 400 && code < 500:
		return FailureInvalidRequest
	case code >= 500 && code < 600:
		return FailureServer
	}
	return ""
}

// claudeErrorKind maps an assistant line's error (SDKAssistantMessageError)
// to a failure kind.
func claudeErrorKind(e string) string {
	switch e {
	case "authentication_failed", "oauth_org_not_allowed", "account_on_hold", "verification_required", "cloud_credential_error":
		return FailureAuth
	case "billing_error":
		return FailureBilling
	case "rate_limit":
		return FailureRateLimit
	case "overloaded", "server_error":
		return FailureServer
	case "invalid_request", "model_not_found":
		return FailureInvalidRequest
	case "max_output_tokens":
		return FailureMaxOutputTokens
	}
	return FailureUnknown
}

// claudeTerminalKind maps a result's terminal_reason (or its error subtype)
// to a failure kind, or "" when it says nothing more than "an API call
// failed", which the assistant line's error explains better.
func claudeTerminalKind(reason, subtype string) string {
	switch reason {
	case "aborted_streaming", "aborted_tools":
		return FailureAborted
	case "max_turns":
		return FailureMaxTurns
	case "budget_exhausted":
		return FailureBudget
	case "prompt_too_long", "blocking_limit":
		return FailureContext
	case "hook_stopped", "stop_hook_prevented":
		return FailureHook
	case "image_error":
		return FailureInvalidRequest
	case "rapid_refill_breaker":
		return FailureRateLimit
	case "", "completed", "api_error", "model_error":
	default:
		return FailureUnknown
	}
	switch subtype {
	case "error_max_turns":
		return FailureMaxTurns
	case "error_max_budget_usd":
		return FailureBudget
	}
	return ""
}

// internalNote reports a string that is the CLI's own diagnostic, not a
// sentence for a person: "[ede_diagnostic] …" and the like.
func internalNote(s string) bool {
	if !strings.HasPrefix(s, "[") {
		return false
	}
	end := strings.IndexByte(s, ']')
	if end < 2 {
		return false
	}
	for _, r := range s[1:end] {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

// openCodeFailure reads an OpenCode error: a string, a named error
// {"name":"APIError","data":{"message":…,"statusCode":…,"ref":…}} (1.x), or
// a structured one {"type":"provider.rate-limit","message":…,"status":…} (2.0).
func openCodeFailure(v any) failure {
	if s, ok := v.(string); ok {
		return failure{kind: FailureUnknown, text: orDefault(short(s, detailLimit), FailureUnknown)}
	}
	e := obj(v)
	if e == nil {
		return failure{kind: FailureUnknown, text: sentence(FailureUnknown)}
	}
	data := obj(e["data"])
	name, typ := str(e, "name"), str(e, "type")
	msg := str(data, "message")
	if msg == "" {
		msg = str(e, "message")
	}
	f := failure{ref: short(orString(str(data, "ref"), str(e, "ref")), inputLimit)}
	status := count(data, "statusCode")
	if status == 0 {
		status = count(e, "status")
	}
	switch name {
	case "ProviderAuthError":
		f.kind = FailureAuth
	case "MessageOutputLengthError":
		f.kind = FailureMaxOutputTokens
	case "MessageAbortedError":
		f.kind = FailureAborted
	case "ContextOverflowError":
		f.kind = FailureContext
	case "ProviderModelNotFoundError":
		f.kind = FailureInvalidRequest
	}
	if f.kind == "" && typ != "" {
		f.kind = openCodeTypeKind(typ)
	}
	if f.kind == "" {
		f.kind = statusKind(status)
	}
	if f.kind == "" {
		f.kind = FailureUnknown
	}
	label := orString(name, typ)
	switch {
	case msg == "" && label != "" && f.kind == FailureUnknown:
		f.text = label
	case msg == "":
		f.text = sentence(f.kind)
	case f.kind == FailureUnknown && label != "" && label != "UnknownError" && label != "unknown":
		// The name is all a person gets to tell this error apart.
		f.text = label + ": " + msg
	default:
		f.text = msg
	}
	f.text = short(f.text, detailLimit)
	return f
}

// openCodeTypeKind maps a 2.0 structured error's open-ended type.
func openCodeTypeKind(typ string) string {
	t := strings.ToLower(typ)
	switch {
	case t == "aborted" || strings.Contains(t, "interrupt"):
		return FailureAborted
	case strings.Contains(t, "auth"):
		return FailureAuth
	case strings.Contains(t, "rate") || strings.Contains(t, "quota"):
		return FailureRateLimit
	case strings.Contains(t, "billing") || strings.Contains(t, "credit"):
		return FailureBilling
	case strings.Contains(t, "context") || strings.Contains(t, "overflow"):
		return FailureContext
	case strings.Contains(t, "output") && strings.Contains(t, "length"):
		return FailureMaxOutputTokens
	case strings.Contains(t, "permission"):
		return FailurePermissionDenied
	}
	return ""
}

func orString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// orDefault is s, or the default sentence of kind when s is empty.
func orDefault(s, kind string) string {
	if s != "" {
		return s
	}
	return sentence(kind)
}

// held is the errors a parser holds back until it knows whether the run went
// on after them. Both parsers embed it.
type held struct {
	errs []failure
}

// hold keeps f back. A run that fails fast can print many errors; the
// first is the cause, and a few are enough to show.
func (h *held) hold(f failure) {
	if len(h.errs) < maxHeld {
		h.errs = append(h.errs, f)
	}
}

const maxHeld = 8

// recover reports the held errors as warnings: the run went on after them.
func (h *held) recover() []Event {
	if len(h.errs) == 0 {
		return nil
	}
	evs := make([]Event, 0, len(h.errs))
	for _, f := range h.errs {
		evs = append(evs, f.event(TypeWarning))
	}
	h.errs = nil
	return evs
}

// first is the first held error, the cause.
func (h *held) first() (failure, bool) {
	if len(h.errs) == 0 {
		return failure{}, false
	}
	return h.errs[0], true
}

// setFailure records f as the run's failure.
func (r *Result) setFailure(f failure) {
	r.Failed = true
	r.FailureKind = f.kind
	r.Error = f.text
	r.ErrorRef = f.ref
}

// clearFailure forgets a failure the run recovered from.
func (r *Result) clearFailure() {
	r.Failed, r.FailureKind, r.Error, r.ErrorRef = false, "", "", ""
}
