package agent

import (
	"encoding/json"
	"testing"
)

func TestOpenCodeEvents(t *testing.T) {
	const sid = `"sessionID":"ses_x"`
	session := Event{Type: TypeStatus, Phase: "session", Text: "session ses_x"}
	runEvents(t, OpenCode{}, []eventsCase{
		{
			name: "pending and running shown once per input",
			lines: []string{
				`{"type":"tool_use",` + sid + `,"part":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"pending","input":{},"raw":""}}}`,
				`{"type":"tool_use",` + sid + `,"part":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"running","input":{"command":"npm install"},"time":{"start":1}}}}`,
				`{"type":"tool_use",` + sid + `,"part":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"running","input":{"command":"npm install"},"title":"npm install","time":{"start":1}}}}`,
				`{"type":"tool_use",` + sid + `,"part":{"type":"tool","tool":"bash","callID":"c1","state":{"status":"completed","input":{"command":"npm install"},"output":"ok","title":"","metadata":{},"time":{"start":1,"end":2}}}}`,
			},
			want: []Event{
				session,
				{Type: TypeTool, Tool: "bash", Status: ToolRunning},
				{Type: TypeTool, Tool: "bash", Input: "npm install", Status: ToolRunning},
				{Type: TypeTool, Tool: "bash", Input: "npm install", Status: ToolCompleted},
			},
			result: Result{SessionID: "ses_x"},
		},
		{
			name: "a multiedit outside the app dir and a failed write",
			lines: []string{
				`{"type":"tool_use","part":{"type":"tool","tool":"multiedit","callID":"c2","state":{"status":"completed","input":{"filePath":"/home/sandbox/.bashrc","edits":[]},"output":"","title":"","metadata":{},"time":{"start":1,"end":2}}}}`,
				`{"type":"tool_use","part":{"type":"tool","tool":"write","callID":"c3","state":{"status":"error","input":{"filePath":"/home/sandbox/workspace/app/a.txt","content":"x"},"error":"EACCES: permission denied","time":{"start":1,"end":2}}}}`,
			},
			want: []Event{
				{Type: TypeTool, Tool: "multiedit", Input: "/home/sandbox/.bashrc", Status: ToolCompleted},
				{Type: TypeFileChanged, Path: "/home/sandbox/.bashrc"},
				{Type: TypeTool, Tool: "write", Input: "a.txt", Status: ToolError, Text: "EACCES: permission denied"},
			},
		},
		{
			name: "error shapes, held until the end; the first is the cause",
			lines: []string{
				`{"type":"error",` + sid + `,"error":{"name":"ProviderAuthError","data":{"providerID":"anthropic","message":"API key is missing"}}}`,
				`{"type":"error",` + sid + `,"error":{"type":"provider.rate-limit","message":"Error 429: slow down","status":429}}`,
				`{"type":"error",` + sid + `,"error":{"name":"APIError","data":{"message":"Payment required","statusCode":402,"isRetryable":false}}}`,
				`{"type":"error",` + sid + `,"error":"ollama refused connection"}`,
				`{"type":"error",` + sid + `,"error":{"name":"UnknownError","data":{"ref":"err_9"}}}`,
				`{"type":"error",` + sid + `,"error":{"type":"tool.execution","message":"bad tool"}}`,
			},
			want: []Event{
				session,
				{Type: TypeError, Reason: FailureAuth, Text: "API key is missing"},
				{Type: TypeError, Reason: FailureRateLimit, Text: "Error 429: slow down"},
				{Type: TypeError, Reason: FailureBilling, Text: "Payment required"},
				{Type: TypeError, Reason: FailureUnknown, Text: "ollama refused connection"},
				{Type: TypeError, Reason: FailureUnknown, Text: "UnknownError (ref err_9)"},
				{Type: TypeError, Reason: FailureUnknown, Text: "tool.execution: bad tool"},
			},
			result: Result{Failed: true, FailureKind: FailureAuth, Error: "API key is missing", SessionID: "ses_x"},
		},
		{
			name: "an error the agent went on after is a warning",
			lines: []string{
				`{"type":"error","error":{"name":"MessageOutputLengthError","data":{}}}`,
				`{"type":"step_start","part":{"type":"step-start"}}`,
			},
			want: []Event{
				{Type: TypeWarning, Reason: FailureMaxOutputTokens, Text: sentence(FailureMaxOutputTokens)},
				{Type: TypeStatus, Phase: "step"},
			},
		},
		{
			name: "reasoning, texts of one step, a text in pieces, done with rejected permissions",
			lines: []string{
				`{"type":"step_start","part":{"type":"step-start"}}`,
				`{"type":"text","part":{"type":"text","text":"old answer"}}`,
				`{"type":"step_start","part":{"type":"step-start"}}`,
				`{"type":"reasoning","part":{"type":"reasoning","text":"think\n\nhard"}}`,
				`{"type":"text","part":{"id":"p1","type":"text","text":"one"}}`,
				`{"type":"text","part":{"type":"text","text":""}}`,
				`{"type":"text","part":{"id":"p2","type":"text","text":"two, "}}`,
				`{"type":"text","part":{"id":"p2","type":"text","text":"continued\n"}}`,
				`{"type":"done","reason":"idle","rejected":["external_directory"]}`,
			},
			want: []Event{
				{Type: TypeStatus, Phase: "step"},
				{Type: TypeMessage, Role: "assistant", Text: "old answer"},
				{Type: TypeStatus, Phase: "step"},
				{Type: TypeStatus, Phase: "thinking", Text: "think hard"},
				{Type: TypeMessage, Role: "assistant", Text: "one"},
				{Type: TypeMessage, Role: "assistant", Text: "two, "},
				{Type: TypeMessage, Role: "assistant", Text: "continued\n"},
				{Type: TypePermissionDenied, Tool: "external_directory", Text: "rejected by the run"},
				{Type: TypeStatus, Phase: "idle", Text: "rejected permissions: external_directory"},
			},
			result: Result{FinalMessage: "one\n\ntwo, continued", PermissionDenials: 1},
		},
		{
			name: "a task call seen running, then done; a refused permission nothing followed",
			lines: []string{
				`{"type":"tool_use","part":{"type":"tool","tool":"task","id":"c9","state":{"status":"running","input":{"description":"Find it","prompt":"find","subagent_type":"explore"}}}}`,
				`{"type":"tool_use","part":{"type":"tool","tool":"task","id":"c9","state":{"status":"completed","input":{"description":"Find it","subagent_type":"explore"},"output":"found <task_metadata>x</task_metadata>"}}}`,
				"\x1b[93m\x1b[1m! \x1b[0mpermission requested: bash (rm -rf node_modules); auto-rejecting",
			},
			want: []Event{
				{Type: TypeSubagentStarted, Subagent: &Subagent{ID: "c9", Type: "explore", Description: "Find it"}, Text: "find"},
				{Type: TypeSubagentFinished, Subagent: &Subagent{ID: "c9", Type: "explore", Description: "Find it"}, Status: SubagentCompleted, Text: "found"},
				{Type: TypePermissionDenied, Tool: "bash", Input: "rm -rf node_modules", Text: "rejected: a run without --auto cannot ask anyone for permission"},
				{Type: TypeError, Reason: FailurePermissionDenied, Text: sentence(FailurePermissionDenied) + ": bash"},
			},
			result: Result{Subagents: 1, PermissionDenials: 1, Failed: true, FailureKind: FailurePermissionDenied,
				Error: sentence(FailurePermissionDenied) + ": bash"},
		},
		{
			name: "known types without their part, and JSON that is no object, stay raw; other lines are logs",
			lines: []string{
				`{"type":"text"}`,
				`{"type":"tool_use","part":{"type":"tool","tool":"bash"}}`,
				`[1,2]`,
				`   `,
				`    at Session.run (/$bunfs/root/src/session/index.ts:88:9)`,
			},
			want: []Event{
				{Type: TypeRaw, Raw: json.RawMessage(`{"type":"text"}`)},
				{Type: TypeRaw, Raw: json.RawMessage(`{"type":"tool_use","part":{"type":"tool","tool":"bash"}}`)},
				{Type: TypeRaw, Raw: json.RawMessage(`[1,2]`)},
				{Type: TypeLog, Text: "at Session.run (/$bunfs/root/src/session/index.ts:88:9)"},
			},
		},
	})
}
