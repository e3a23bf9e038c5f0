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

import "encoding/json"

// Event types. A parser produces every type but TypeDone, which belongs to the
// task runner.
const (
	TypeStatus      = "status"       // Phase says what the agent is doing
	TypeMessage     = "message"      // Role and Text
	TypeTool        = "tool"         // Tool, Input, Status (and Text for an error)
	TypeFileChanged = "file_changed" // Path, after a tool changed that file
	TypeError       = "error"        // Text
	TypeUsage       = "usage"        // Usage: the run's totals so far
	TypeDone        = "done"         // the task runner's, never a parser's
	TypeRaw         = "raw"          // Raw: a line or block no mapping knows
)

// Tool statuses.
const (
	ToolRunning   = "running"
	ToolCompleted = "completed"
	ToolError     = "error"
)

// AppDir is the app directory in the sandbox, where the task runner starts
// the agent. Adapters report file paths relative to it when they can.
const AppDir = "/home/sandbox/workspace/app"

// Event is one step of an agent run, the same for every CLI. Unknown CLI
// events are kept as Type "raw" with Raw set, never dropped.
type Event struct {
	Type   string          `json:"type"`             // status, message, tool, file_changed, error, usage, done, raw
	Phase  string          `json:"phase,omitempty"`  // status: "session", "step", "thinking", "retry", "compacting", "rate_limit", "idle"
	Role   string          `json:"role,omitempty"`   // message: "assistant" (or "user"/"system" when the CLI says so)
	Text   string          `json:"text,omitempty"`   // message text; error message; a status's detail; a failed tool's error
	Tool   string          `json:"tool,omitempty"`   // tool name, lower case (edit, write, bash, read, …)
	Input  string          `json:"input,omitempty"`  // short summary of the tool input (≤ 200 chars: a path, a command), never a whole file
	Status string          `json:"status,omitempty"` // tool: running | completed | error
	Path   string          `json:"path,omitempty"`   // file_changed: relative to the app dir when under it
	Usage  *Usage          `json:"usage,omitempty"`  // usage
	Raw    json.RawMessage `json:"raw,omitempty"`    // raw: the CLI's JSON as it was; a line that is not JSON is kept as a JSON string
}

// Usage counts tokens and cost. In a usage event it is the run's total so
// far, so the last usage event of a run carries its totals.
type Usage struct {
	InputTokens      int64   `json:"input_tokens"`
	OutputTokens     int64   `json:"output_tokens"` // reasoning tokens included
	CacheReadTokens  int64   `json:"cache_read_tokens"`
	CacheWriteTokens int64   `json:"cache_write_tokens"`
	CostUSD          float64 `json:"cost_usd"` // as the CLI reports it; an estimate, not a bill
}

// Result is what the stream said so far about the run as a whole.
type Result struct {
	FinalMessage string `json:"final_message"` // the agent's last answer
	Usage        Usage  `json:"usage"`
	Failed       bool   `json:"failed"` // the CLI reported an error (the exit code is the runner's to add)
	Error        string `json:"error,omitempty"`
	SessionID    string `json:"session_id,omitempty"` // the CLI's own session id
}

// fail marks the run failed. The first error is the cause, so it is the one
// kept: later ones follow from it.
func (r *Result) fail(text string) {
	r.Failed = true
	if r.Error == "" {
		r.Error = text
	}
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
	// events, in stream order. A line that is not JSON becomes a raw event,
	// a blank line none. Parse never panics and keeps no reference to line.
	Parse(line []byte) []Event
	// Result is what the stream said so far.
	Result() Result
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
