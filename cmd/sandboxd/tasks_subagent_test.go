package main

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// subagentEvent is the part of a task event's data that says which subagent it is about.
type subagentEvent struct {
	Type     string
	Text     string
	Tool     string
	Status   string
	Subagent *struct{ ID, Type, Description string }
}

// A task whose agent hands work to a subagent: the SSE stream shows the subagent's start,
// its progress and its end while the task runs, in order, with the subagent's tool calls
// attributed to it; a reader who comes later, or resumes mid-way, sees the same events.
func TestTaskSubagentStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	taskSandbox(t, d, "sub")
	// The fake's subagent holds after its first progress until this file exists, so the
	// test knows the agent is mid-run when it reads that progress.
	const gate = "/tmp/subagent-may-go-on"
	task := startTask(t, d, "sub", map[string]any{"prompt": "survey the app with a subagent wait=" + gate, "agent": "claude"})

	// The stream is read on its own goroutine, so that a stream that holds its events back
	// fails the test instead of hanging it. It ends when the body does (at the latest when
	// the test's cleanup closes it).
	progressed := make(chan struct{})
	streamed := make(chan []taskEvent, 1)
	body := openEvents(t, d, task.EventsURL, "")
	go func() {
		first := true
		streamed <- readTaskSSE(t, body, func(ev taskEvent) {
			if ev.Type == "subagent_progress" && first {
				first = false
				close(progressed)
			}
		})
	}()
	select {
	case <-progressed:
	case <-time.After(2 * time.Minute):
		t.Fatal("no subagent progress arrived while the subagent was held")
	}
	if st := getTask(t, d, "sub", task.ID).Status; st != "running" {
		t.Fatalf("task status when the subagent's first progress arrived = %q, want running: the progress must arrive live", st)
	}
	mustExec(t, d, "sub", "touch", gate)
	var live []taskEvent
	select {
	case live = <-streamed:
	case <-time.After(2 * time.Minute):
		t.Fatal("the task did not end after the subagent was let go on")
	}
	if len(live) == 0 || live[len(live)-1].Type != "done" {
		t.Fatalf("the stream did not end with done: %+v", live)
	}

	// The subagent's events, in order, all about the subagent the first one started.
	var sub []subagentEvent
	var id string
	tools := 0
	for i, ev := range live {
		if ev.ID != int64(i+1) {
			t.Fatalf("event %d has id %d", i, ev.ID)
		}
		var data subagentEvent
		if err := json.Unmarshal([]byte(ev.Data), &data); err != nil {
			t.Fatalf("event %d: %v: %s", ev.ID, err, ev.Data)
		}
		switch {
		case ev.Type == "subagent_started":
			if data.Subagent == nil || data.Subagent.ID == "" || data.Subagent.Type != "Explore" || data.Subagent.Description != "Survey the app" {
				t.Fatalf("subagent_started: %s", ev.Data)
			}
			id = data.Subagent.ID
			sub = append(sub, data)
		case strings.HasPrefix(ev.Type, "subagent_"):
			if data.Subagent == nil || data.Subagent.ID != id {
				t.Fatalf("%s about another subagent than the one started (%q): %s", ev.Type, id, ev.Data)
			}
			sub = append(sub, data)
		case ev.Type == "tool" && data.Subagent != nil:
			if data.Subagent.ID != id || sub[len(sub)-1].Type == "subagent_finished" {
				t.Fatalf("a tool call attributed to subagent %q outside its run: %s", data.Subagent.ID, ev.Data)
			}
			tools++
		}
	}
	var types, progress []string
	for _, s := range sub {
		types = append(types, s.Type)
		if s.Type == "subagent_progress" {
			progress = append(progress, s.Tool+": "+s.Text)
		}
	}
	if want := []string{"subagent_started", "subagent_progress", "subagent_progress", "subagent_finished"}; !slices.Equal(types, want) {
		t.Fatalf("subagent events = %q, want %q", types, want)
	}
	if !strings.HasPrefix(progress[0], "glob: Listed the app directory: ") || progress[1] != "bash: Checked the working directory" {
		t.Errorf("progress = %q", progress)
	}
	if fin := sub[3]; fin.Status != "completed" || fin.Text == "" {
		t.Errorf("subagent_finished = %+v, want completed with its summary", fin)
	}
	if tools != 4 { // its Glob and its Bash, each running then completed
		t.Errorf("%d tool events attributed to the subagent, want 4", tools)
	}
	if got := getTask(t, d, "sub", task.ID); got.Status != "succeeded" || got.FinalMessage != "Created index.html and notes.md." {
		t.Fatalf("task: %+v", got)
	}

	// Replays: from the start, and from the subagent's start on, the same events.
	again := readTaskSSE(t, openEvents(t, d, task.EventsURL, ""), nil)
	if !slices.Equal(again, live) {
		t.Fatalf("the replay differs from the live stream:\n live %+v\nagain %+v", live, again)
	}
	start := slices.IndexFunc(live, func(ev taskEvent) bool { return ev.Type == "subagent_started" })
	resumed := readTaskSSE(t, openEvents(t, d, task.EventsURL, strconv.FormatInt(live[start].ID, 10)), nil)
	if !slices.Equal(resumed, live[start+1:]) {
		t.Fatalf("resuming after event %d gave other events:\n got %+v\nwant %+v", live[start].ID, resumed, live[start+1:])
	}
}
