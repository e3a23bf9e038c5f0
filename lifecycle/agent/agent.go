// Package agent knows the coding-agent CLIs that sandboxd runs inside a
// sandbox: for each one the argv and environment of an unattended run, and a
// parser that turns the CLI's JSON stream on stdout into one normalized event
// model. It runs nothing itself: the task runner in lifecycle executes the
// command, feeds each stdout line to Parser.Parse, numbers and stores the
// events, and emits the final "done" event, which no parser ever produces.
//
// The formats each adapter reads, and the versions they were learned from,
// are recorded in FORMATS.md beside this file.
package agent

import (
	"encoding/json"
	"maps"
)

// Event types. A parser produces every type but TypeDone, which belongs to the
// task runner.
const (
	TypeStatus           = "status"            // Phase says what the agent (or the CLI itself) is doing
	TypeMessage          = "message"           // Role and Text
	TypeTool             = "tool"              // Tool, Input, Status (and Text for an error)
	TypeFileChanged      = "file_changed"      // Path, after a tool changed that file; Patch when the CLI gave one
	TypeSubagentStarted  = "subagent_started"  // Subagent; Text: what it was asked, in short
	TypeSubagentProgress = "subagent_progress" // Subagent; Text: what it is doing now; Tool: its last tool
	TypeSubagentFinished = "subagent_finished" // Subagent; Status: completed | failed | stopped; Text: its summary
	TypePermissionDenied = "permission_denied" // Tool, Input, Text: a tool call the CLI refused to run
	TypeWarning          = "warning"           // Reason, Text: an error the run went on after
	TypeError            = "error"             // Reason, Text: what ended the run
	TypeUsage            = "usage"             // Usage: the run's totals so far
	TypeLog              = "log"               // Text: a stdout line that is not JSON (a CLI's warning, a stack trace)
	TypeDone             = "done"              // the task runner's, never a parser's
	TypeRaw              = "raw"               // Raw: a line or block no mapping knows
)

// Tool statuses.
const (
	ToolRunning   = "running"
	ToolCompleted = "completed"
	ToolError     = "error"
)

// Subagent end statuses (subagent_finished's Status).
const (
	SubagentCompleted = "completed"
	SubagentFailed    = "failed"
	SubagentStopped   = "stopped"
)

// AppDir is the app directory in the sandbox, where the task runner starts
// the agent. Adapters report file paths relative to it when they can.
const AppDir = "/home/sandbox/workspace/app"

// Event is one step of an agent run, the same for every CLI. Unknown CLI
// events are kept as Type "raw" with Raw set, never dropped.
type Event struct {
	Type     string          `json:"type"`               // one of the Type constants
	Phase    string          `json:"phase,omitempty"`    // status: "session", "step", "thinking", "requesting", "retry", "compacting", "rate_limit", "hook", "task", "idle", …
	Role     string          `json:"role,omitempty"`     // message: "assistant" (or "user"/"system" when the CLI says so)
	Text     string          `json:"text,omitempty"`     // message text; error or warning sentence; a status's detail; a failed tool's error
	Tool     string          `json:"tool,omitempty"`     // tool name, lower case (edit, write, bash, read, …)
	Input    string          `json:"input,omitempty"`    // short summary of the tool input (≤ 200 chars: a path, a command), never a whole file
	Status   string          `json:"status,omitempty"`   // tool: running | completed | error; subagent_finished: completed | failed | stopped
	Reason   string          `json:"reason,omitempty"`   // error, warning: the failure kind (see the Failure constants)
	Path     string          `json:"path,omitempty"`     // file_changed: relative to the app dir when under it
	Patch    string          `json:"patch,omitempty"`    // file_changed: a unified diff of the change, when the CLI gave one (≤ 16 KiB)
	Subagent *Subagent       `json:"subagent,omitempty"` // the subagent the event belongs to; nil for the main agent
	Usage    *Usage          `json:"usage,omitempty"`    // usage
	Raw      json.RawMessage `json:"raw,omitempty"`      // raw: the CLI's JSON as it was; a line that is not JSON is a log event instead
}

// Subagent names a subagent: an agent the main one started to do part of the
// work (Claude Code's Agent/Task tool, OpenCode's task tool). Events from it
// carry it, so a client can group them.
type Subagent struct {
	ID          string `json:"id"`                    // the CLI's id of the tool call that started it
	Type        string `json:"type,omitempty"`        // its kind: "general-purpose", "Explore", …
	Description string `json:"description,omitempty"` // the short task it was given
}

// Usage counts tokens and cost. In a usage event it is the run's total so
// far, so the last usage event of a run carries its totals.
type Usage struct {
	InputTokens      int64   `json:"input_tokens"`
	OutputTokens     int64   `json:"output_tokens"` // reasoning tokens included
	CacheReadTokens  int64   `json:"cache_read_tokens"`
	CacheWriteTokens int64   `json:"cache_write_tokens"`
	CostUSD          float64 `json:"cost_usd"` // as the CLI reports it; an estimate, not a bill
	// Models splits the totals by model when the CLI does (Claude Code's
	// modelUsage, which covers subagents and auxiliary calls too).
	Models map[string]ModelUsage `json:"models,omitempty"`
}

// ModelUsage is one model's share of a run's usage.
type ModelUsage struct {
	InputTokens      int64   `json:"input_tokens"`
	OutputTokens     int64   `json:"output_tokens"`
	CacheReadTokens  int64   `json:"cache_read_tokens"`
	CacheWriteTokens int64   `json:"cache_write_tokens"`
	CostUSD          float64 `json:"cost_usd"`
}

// clone is u with its own Models map, so that an event's usage and the
// result's never share one.
func (u Usage) clone() Usage {
	if u.Models != nil {
		u.Models = maps.Clone(u.Models)
	}
	return u
}

// Failure kinds: why a run failed (Result.FailureKind, and the Reason of error
// and warning events), in words a person can act on. The CLIs' own codes are
// mapped onto these; see FORMATS.md.
const (
	FailureAuth             = "authentication_failed" // no key, a refused key, an account that may not use the model
	FailureBilling          = "billing_error"         // out of credit
	FailureRateLimit        = "rate_limit"            // too many requests, or the provider overloaded
	FailureInvalidRequest   = "invalid_request"       // the provider refused the request (an unknown model, a bad image, …)
	FailureServer           = "server_error"          // the provider failed
	FailureMaxOutputTokens  = "max_output_tokens"     // an answer longer than the model may write
	FailureMaxTurns         = "max_turns"             // the run used all its turns
	FailureBudget           = "budget_exhausted"      // the run spent its budget
	FailureContext          = "context_limit"         // the conversation no longer fits the model
	FailureAborted          = "aborted"               // the run was interrupted
	FailureHook             = "hook"                  // a hook stopped the run
	FailurePermissionDenied = "permission_denied"     // a permission nobody could grant ended the run
	FailureUnknown          = "unknown"
)

// Result is what the stream said so far about the run as a whole.
type Result struct {
	FinalMessage string `json:"final_message"` // the agent's last answer
	Usage        Usage  `json:"usage"`
	// Failed says the stream reported a failure that the run did not recover
	// from: the final result decides, so an error the agent went on after is
	// only a warning. The exit code is the runner's to add.
	Failed      bool   `json:"failed"`
	FailureKind string `json:"failure_kind,omitempty"` // one of the Failure constants, when Failed
	Error       string `json:"error,omitempty"`        // the human sentence: what failed, what to do
	ErrorRef    string `json:"error_ref,omitempty"`    // OpenCode's ref of an error, the pointer into its logs
	SessionID   string `json:"session_id,omitempty"`   // the CLI's own session id
	Subagents   int    `json:"subagents,omitempty"`    // subagents the run started
	// PermissionDenials counts the tool calls the CLI refused to run.
	PermissionDenials int `json:"permission_denials,omitempty"`
}

// Adapter describes one agent CLI.
type Adapter interface {
	// Name is the adapter's name: "opencode" or "claude".
	Name() string
	// Binary is the executable looked up in the image.
	Binary() string
	// Command is the argv, Binary() first, of an unattended run of prompt
	// that may edit files and run commands without asking. An empty model
	// leaves the choice to the CLI. The prompt is the last element, after
	// "--", so a prompt starting with "-" is never read as a flag.
	Command(prompt, model string) []string
	// Env is the extra environment the CLI needs to run unattended. It never
	// holds secrets: provider keys are the runner's to add.
	Env() map[string]string
	// NewParser returns a parser for one run.
	NewParser() Parser
}

// Parser turns one run's stdout into events. It is not safe for concurrent
// use; the runner feeds it lines in order from one goroutine.
type Parser interface {
	// Parse maps one stdout line (without its newline) to zero or more
	// events, in stream order. A line that is not JSON becomes a log event,
	// a blank line none. Parse never panics and keeps no reference to line.
	Parse(line []byte) []Event
	// Result is what the stream said so far.
	Result() Result
}

// Finisher is implemented by parsers that can hold an event back until they
// see what follows it: an error line is an error only if the run ends after
// it, and a warning if the run goes on. Finish tells the parser the stream
// ended and returns what it held back (at most an error event). The runner
// calls it once, after the last Parse; a runner that never calls it still
// gets the right Result, only without that last event.
type Finisher interface {
	Finish() []Event
}

// Lookup returns the adapter named name, with the default app directory.
func Lookup(name string) (Adapter, bool) {
	switch name {
	case "opencode":
		return OpenCode{}, true
	case "claude":
		return Claude{}, true
	}
	return nil, false
}

// Names lists the adapters' names, sorted.
func Names() []string { return []string{"claude", "opencode"} }
