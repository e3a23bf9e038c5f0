package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// cancelledMessage finds the final_message of a cancelled task in `task ls --json`.
var cancelledMessage = regexp.MustCompile(`("status": "cancelled",\n(?:.*\n)*?\s*"final_message": )"(?:[^"\\]|\\.)*"`)

// task run --follow shows the fake agents' events live and in order, and exits non-zero
// when the task fails (agent_error); task ls, get and cancel.
func TestCLITask(t *testing.T) {
	t.Parallel()
	d := cliDaemon(t)
	r := newCLIRunner(t, d, cliToken)
	r.run("create", "-q", "--id", "ct", "-e", "ANTHROPIC_API_KEY="+providerKey).must(t, 0)

	ok := r.run("task", "run", "ct", "--agent", "claude", "--follow", "create a todo list").must(t, 0)
	r.golden("task-run-follow", ok)
	lines := strings.Split(strings.TrimSpace(ok.stdout), "\n")
	order := []string{"task ", "status: started claude", "tool: write index.html (running)", "tool: write index.html (completed)",
		"file changed: index.html", "tokens: ", "done: succeeded"}
	at := 0
	for _, l := range lines {
		if at < len(order) && strings.HasPrefix(l, order[at]) {
			at++
		}
	}
	if at != len(order) {
		t.Fatalf("the events are not all there in order (stopped looking for %q):\n%s", order[min(at, len(order)-1)], ok.stdout)
	}
	if strings.Contains(ok.stdout+ok.stderr, providerKey) {
		t.Fatal("the provider key was printed")
	}

	failed := r.run("task", "run", "ct", "--agent", "opencode", "-f", "please fail").must(t, 1)
	r.golden("task-run-follow-fails", failed)
	if !strings.Contains(failed.stdout, "error (server_error): fake failure") || !strings.Contains(failed.stderr, "failed: agent_error") {
		t.Fatalf("a failing agent: %+v", failed)
	}
	asJSON := r.run("task", "run", "ct", "--agent", "opencode", "-f", "--json", "please fail again").must(t, 1)
	r.golden("task-run-follow-json", asJSON)
	var seq int64
	var last string
	for _, l := range strings.Split(strings.TrimSpace(asJSON.stdout), "\n") {
		var ev struct {
			Seq  int64
			Type string
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Seq != seq+1 {
			t.Fatalf("event line %q after %d: %v", l, seq, err)
		}
		seq, last = ev.Seq, ev.Type
	}
	if last != "done" {
		t.Fatalf("the JSON events end with %q", last)
	}

	started := r.run("task", "run", "ct", "--agent", "claude", "sleep=60 then write").must(t, 0)
	r.golden("task-run", started)
	id := strings.Fields(started.stdout)[2]
	r.golden("task-cancel", r.run("task", "cancel", "ct", id).must(t, 0))
	r.golden("task-ls", r.run("task", "ls", "ct").must(t, 0))
	// The cancelled task's final message is whatever the agent had said when the cancel
	// landed: nothing yet, its first line, or a progress line, by the host's pace.
	lsJSON := r.run("task", "ls", "ct", "--json").must(t, 0)
	lsJSON.stdout = cancelledMessage.ReplaceAllString(lsJSON.stdout, `$1"<as far as it got>"`)
	r.golden("task-ls-json", lsJSON)
	failedID := strings.Fields(failed.stdout)[1] // "task <id> (opencode) in ct"
	r.golden("task-get", r.run("task", "get", "ct", failedID).must(t, 0))
	r.golden("task-get-json", r.run("task", "get", "ct", failedID, "--json").must(t, 0))
	r.golden("task-get-missing", r.run("task", "get", "ct", "nope").must(t, 1))
}
