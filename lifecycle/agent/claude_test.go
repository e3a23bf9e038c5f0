package agent

import (
	"encoding/json"
	"reflect"
	"testing"
)

// parseLines runs lines through a new parser of a, then ends the stream.
func parseLines(a Adapter, lines ...string) ([]Event, Result) {
	p := a.NewParser()
	var evs []Event
	for _, l := range lines {
		evs = append(evs, p.Parse([]byte(l))...)
	}
	if f, ok := p.(Finisher); ok {
		evs = append(evs, f.Finish()...)
	}
	return evs, p.Result()
}

type eventsCase struct {
	name   string
	lines  []string
	want   []Event
	result Result
}

func runEvents(t *testing.T, a Adapter, tests []eventsCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, res := parseLines(a, tt.lines...)
			if !reflect.DeepEqual(evs, tt.want) {
				t.Errorf("events:\n got %s\nwant %s", jsonOf(evs), jsonOf(tt.want))
			}
			if !reflect.DeepEqual(res, tt.result) {
				t.Errorf("result:\n got %+v\nwant %+v", res, tt.result)
			}
		})
	}
}

func TestClaudeEvents(t *testing.T) {
	sub := func(id, typ, desc string) *Subagent { return &Subagent{ID: id, Type: typ, Description: desc} }
	runEvents(t, Claude{}, []eventsCase{
		{
			name: "max turns with errors listed",
			lines: []string{
				`{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"working"}]},"parent_tool_use_id":null}`,
				`{"type":"result","subtype":"error_max_turns","is_error":true,"session_id":"s2","usage":{"input_tokens":5,"output_tokens":6,"cache_read_input_tokens":7,"cache_creation_input_tokens":8},"total_cost_usd":0.5,"errors":["reached max turns (3)"]}`,
			},
			want: []Event{
				{Type: TypeMessage, Role: "assistant", Text: "working"},
				{Type: TypeUsage, Usage: &Usage{InputTokens: 5, OutputTokens: 6, CacheReadTokens: 7, CacheWriteTokens: 8, CostUSD: 0.5}},
				{Type: TypeError, Reason: FailureMaxTurns, Text: "reached max turns (3)"},
			},
			result: Result{FinalMessage: "working", Usage: Usage{InputTokens: 5, OutputTokens: 6, CacheReadTokens: 7, CacheWriteTokens: 8, CostUSD: 0.5},
				Failed: true, FailureKind: FailureMaxTurns, Error: "reached max turns (3)", SessionID: "s2"},
		},
		{
			name: "an API failure explained only by its status; usage without modelUsage",
			lines: []string{
				`{"type":"result","subtype":"success","is_error":true,"api_error_status":429,"terminal_reason":"api_error","usage":{"input_tokens":1,"output_tokens":2},"modelUsage":{},"total_cost_usd":0}`,
			},
			want: []Event{
				{Type: TypeUsage, Usage: &Usage{InputTokens: 1, OutputTokens: 2}},
				{Type: TypeError, Reason: FailureRateLimit, Text: sentence(FailureRateLimit)},
			},
			result: Result{Usage: Usage{InputTokens: 1, OutputTokens: 2}, Failed: true, FailureKind: FailureRateLimit, Error: sentence(FailureRateLimit)},
		},
		{
			name: "a stream that ends on an error line, with no result: the error shows at the end",
			lines: []string{
				`{"type":"assistant","message":{"id":"m1","model":"claude-sonnet-4-5","content":[{"type":"text","text":"partial"}]},"error":"server_error","api_error":"API Error: 500 internal"}`,
				`{"type":"system","subtype":"status","status":"requesting"}`,
			},
			want: []Event{
				{Type: TypeMessage, Role: "assistant", Text: "partial"},
				{Type: TypeStatus, Phase: "requesting"},
				{Type: TypeError, Reason: FailureServer, Text: "API Error: 500 internal"},
			},
			result: Result{FinalMessage: "partial", Failed: true, FailureKind: FailureServer, Error: "API Error: 500 internal"},
		},
		{
			name: "an error the run went on after is a warning, and a success result clears it",
			lines: []string{
				`{"type":"assistant","message":{"model":"<synthetic>","content":[{"type":"text","text":"API Error: Request rejected (429)"}]},"error":"rate_limit"}`,
				`{"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,"error":"rate_limit","error_status":429}`,
				`{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"done"}]}}`,
				`{"type":"result","subtype":"success","is_error":false,"result":"done"}`,
			},
			want: []Event{
				{Type: TypeStatus, Phase: "retry", Text: "attempt 2 of 10: rate_limit (429)"},
				{Type: TypeWarning, Reason: FailureRateLimit, Text: "API Error: Request rejected (429)"},
				{Type: TypeMessage, Role: "assistant", Text: "done"},
				{Type: TypeUsage, Usage: &Usage{}},
			},
			result: Result{FinalMessage: "done"},
		},
		{
			name: "a subagent's text is not the answer; blocks of one message join",
			lines: []string{
				`{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"first"}]},"parent_tool_use_id":null}`,
				`{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"second"}]},"parent_tool_use_id":null}`,
				`{"type":"assistant","message":{"id":"m2","content":[{"type":"text","text":"from the subagent"}]},"parent_tool_use_id":"toolu_task","subagent_type":"Plan","task_description":"Plan it"}`,
			},
			want: []Event{
				{Type: TypeMessage, Role: "assistant", Text: "first"},
				{Type: TypeMessage, Role: "assistant", Text: "second"},
				{Type: TypeMessage, Role: "assistant", Text: "from the subagent", Subagent: sub("toolu_task", "Plan", "Plan it")},
			},
			result: Result{FinalMessage: "first\n\nsecond", Subagents: 1},
		},
		{
			name: "task_started before the Agent call, a killed task, a background shell",
			lines: []string{
				`{"type":"system","subtype":"task_started","task_id":"t1","tool_use_id":"toolu_a","description":"Review","subagent_type":"code-reviewer","task_type":"local_agent"}`,
				`{"type":"assistant","message":{"content":[{"type":"tool_use","id":"toolu_a","name":"Task","input":{"description":"Review","prompt":"review it","subagent_type":"code-reviewer"}}]}}`,
				`{"type":"system","subtype":"task_updated","task_id":"t1","patch":{"status":"running"}}`,
				`{"type":"system","subtype":"task_updated","task_id":"t1","patch":{"status":"killed","end_time":1}}`,
				`{"type":"system","subtype":"task_notification","task_id":"t1","tool_use_id":"toolu_a","status":"stopped","output_file":"","summary":"stopped"}`,
				`{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"toolu_a","content":"stopped by the user","is_error":true}]}}`,
				`{"type":"system","subtype":"task_started","task_id":"b1","tool_use_id":"toolu_b","description":"npm run dev","task_type":"local_bash"}`,
				`{"type":"system","subtype":"task_notification","task_id":"b1","status":"completed","output_file":"/tmp/b1.log","summary":"exited 0"}`,
			},
			want: []Event{
				{Type: TypeSubagentStarted, Subagent: sub("toolu_a", "code-reviewer", "Review")},
				{Type: TypeSubagentFinished, Subagent: sub("toolu_a", "code-reviewer", "Review"), Status: SubagentStopped},
				{Type: TypeStatus, Phase: "task", Text: "started: npm run dev"},
				{Type: TypeStatus, Phase: "task", Text: "completed: exited 0"},
			},
			result: Result{Subagents: 1},
		},
		{
			name: "notebook edit, array tool result, unknown blocks, a result for no call, a hook line",
			lines: []string{
				`{"type":"assistant","message":{"id":"m1","content":[{"type":"tool_use","id":"t1","name":"NotebookEdit","input":{"notebook_path":"/home/sandbox/workspace/app/nb.ipynb","new_source":"print(1)"}},{"type":"image","source":{}}]}}`,
				`{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"Updated cell"}]},{"type":"tool_result","tool_use_id":"t9","content":[{"type":"text","text":"no\nsuch"}],"is_error":true}]}}`,
				`{"type":"user","message":{"role":"user","content":"[Request interrupted by user]"}}`,
				`{"type":"system","subtype":"hook_started","hook_event":"PreToolUse"}`,
			},
			want: []Event{
				{Type: TypeTool, Tool: "notebookedit", Input: "nb.ipynb", Status: ToolRunning},
				{Type: TypeRaw, Raw: json.RawMessage(`{"source":{},"type":"image"}`)},
				{Type: TypeTool, Tool: "notebookedit", Input: "nb.ipynb", Status: ToolCompleted},
				{Type: TypeFileChanged, Path: "nb.ipynb"},
				{Type: TypeTool, Status: ToolError, Text: "no such"},
				{Type: TypeMessage, Role: "user", Text: "[Request interrupted by user]"},
				{Type: TypeStatus, Phase: "hook", Text: "PreToolUse started"},
			},
		},
		{
			name: "fields of other types read as absent; a line that is not JSON is a log",
			lines: []string{
				`{"type":"result","subtype":"success","is_error":"no","result":5,"total_cost_usd":"1","usage":{"input_tokens":-3,"output_tokens":1e30},"modelUsage":[1]}`,
				`{"type":"assistant","message":{"content":"plain"}}`,
				`{"type":"assistant"}`,
				"\x1b[31mnode: warning\x1b[0m  \t",
			},
			want: []Event{
				{Type: TypeUsage, Usage: &Usage{}},
				{Type: TypeMessage, Role: "assistant", Text: "plain"},
				{Type: TypeRaw, Raw: json.RawMessage(`{"type":"assistant"}`)},
				{Type: TypeLog, Text: "node: warning"},
			},
		},
	})
}
