package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/image"
	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
)

const providerKey = "sk-ant-test-7f3c9e21d4b8a6"

type taskJSON struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	Agent         string `json:"agent"`
	EventsURL     string `json:"events_url"`
	FinalMessage  string `json:"final_message"`
	FailureReason string `json:"failure_reason"`
	ExitCode      *int   `json:"exit_code"`
	DurationMS    int64  `json:"duration_ms"`
	FilesChanged  []struct {
		Path, Change string
	} `json:"files_changed"`
	Usage struct {
		InputTokens  int64 `json:"input_tokens"`
		OutputTokens int64 `json:"output_tokens"`
	} `json:"usage"`
}

type taskEvent struct {
	ID   int64
	Type string
	Data string
}

// readTaskSSE reads events until done (or the stream ends), calling each as it arrives.
func readTaskSSE(t testing.TB, resp *http.Response, each func(taskEvent)) []taskEvent {
	t.Helper()
	var out []taskEvent
	var cur taskEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Type != "" {
				out = append(out, cur)
				if each != nil {
					each(cur)
				}
				if cur.Type == "done" {
					return out
				}
			}
			cur = taskEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.ID, _ = strconv.ParseInt(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			cur.Type = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.Data = line[6:]
		}
	}
	return out
}

func openEvents(t testing.TB, d *daemon, url string, lastID string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", d.API+url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("events: %d %s", resp.StatusCode, b)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func startTask(t testing.TB, d *daemon, id string, body map[string]any) taskJSON {
	t.Helper()
	var task taskJSON
	if code := call(t, "POST", d.API+"/v1/sandboxes/"+id+"/tasks", body, &task); code != http.StatusAccepted {
		t.Fatalf("start task: %d %+v", code, task)
	}
	if task.Status != "running" || task.EventsURL == "" || task.ID == "" {
		t.Fatalf("202 answer: %+v", task)
	}
	return task
}

func getTask(t testing.TB, d *daemon, id, taskID string) taskJSON {
	t.Helper()
	var task taskJSON
	if code := call(t, "GET", d.API+"/v1/sandboxes/"+id+"/tasks/"+taskID, nil, &task); code != 200 {
		t.Fatalf("get task: %d", code)
	}
	return task
}

// taskSandbox has a provider key and a service on port 3000 serving the app dir (the
// image's own devserver moves to 3100 through PORT, so it does not hold 3000).
func taskSandbox(t testing.TB, d *daemon, id string) {
	mustCreate(t, d, map[string]any{"id": id, "env": map[string]string{"ANTHROPIC_API_KEY": providerKey, "PORT": "3100"},
		"services": []any{map[string]any{"name": "web", "cmd": []string{"devserver"}, "cwd": "workspace/app",
			"env": map[string]string{"PORT": "3000"}, "port": 3000}}})
}

// Both agents: the stream arrives in order and normalized, the result says what changed,
// and the service on port 3000 serves what the agent wrote.
func TestTaskEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	for _, ag := range []string{"opencode", "claude"} {
		t.Run(ag, func(t *testing.T) {
			id := "t-" + ag
			taskSandbox(t, d, id)
			prompt := "create a Vite app that shows a todo list and run it on port 3000"
			task := startTask(t, d, id, map[string]any{"prompt": prompt, "agent": ag})
			events := readTaskSSE(t, openEvents(t, d, task.EventsURL, ""), nil)
			if len(events) == 0 || events[0].Type != "status" || events[len(events)-1].Type != "done" {
				t.Fatalf("events: %+v", events)
			}
			seen := map[string]bool{}
			for i, ev := range events {
				if ev.ID != int64(i+1) {
					t.Fatalf("event %d has id %d: ids must be 1, 2, 3…", i, ev.ID)
				}
				seen[ev.Type] = true
				if strings.Contains(ev.Data, providerKey) {
					t.Fatalf("the provider key leaked into event %d: %s", ev.ID, ev.Data)
				}
			}
			for _, want := range []string{"message", "tool", "file_changed", "usage"} {
				if !seen[want] {
					t.Errorf("no %s event in %v", want, seen)
				}
			}
			got := getTask(t, d, id, task.ID)
			if got.Status != "succeeded" || got.ExitCode == nil || *got.ExitCode != 0 || got.FinalMessage == "" || got.Usage.OutputTokens == 0 {
				t.Fatalf("task: %+v", got)
			}
			changed := map[string]string{}
			for _, f := range got.FilesChanged {
				changed[f.Path] = f.Change
			}
			if changed["index.html"] != "added" {
				t.Errorf("files changed: %v", changed)
			}
			mustPreview(t, d, id, 3000, "/file?path=index.html", "todo list")
			mustPreview(t, d, id, 3000, "/file?path=index.html", "made by fake-"+ag)
		})
	}
	if strings.Contains(d.logs.String(), providerKey) {
		t.Fatal("the provider key appears in sandboxd's log")
	}
	// The task runner's hooks reach /metrics: both tasks counted once ended, none running.
	testutil.Eventually(t, 10*time.Second, "both tasks counted in /metrics", func() bool {
		return scrape(t, d, `sandboxd_tasks_total{status="succeeded"}`) == 2 && scrape(t, d, `sandboxd_tasks_running`) == 0
	})
}

// Replay from a middle id, and two subscribers at once see the same sequence.
func TestTaskEventsReplayAndFanOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	taskSandbox(t, d, "fan")
	task := startTask(t, d, "fan", map[string]any{"prompt": "sleep=2 then write", "agent": "claude"})
	var wg sync.WaitGroup
	streams := make([][]taskEvent, 2)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			streams[i] = readTaskSSE(t, openEvents(t, d, task.EventsURL, ""), nil)
		}()
	}
	wg.Wait()
	if len(streams[0]) < 4 || len(streams[0]) != len(streams[1]) {
		t.Fatalf("subscribers saw %d and %d events", len(streams[0]), len(streams[1]))
	}
	for i := range streams[0] {
		if streams[0][i] != streams[1][i] {
			t.Fatalf("event %d differs: %+v vs %+v", i, streams[0][i], streams[1][i])
		}
	}
	mid := streams[0][len(streams[0])/2]
	replay := readTaskSSE(t, openEvents(t, d, task.EventsURL, strconv.FormatInt(mid.ID, 10)), nil)
	if len(replay) == 0 || replay[0].ID != mid.ID+1 || replay[len(replay)-1].Type != "done" {
		t.Fatalf("replay after %d: %+v", mid.ID, replay)
	}
	since := readTaskSSE(t, openEvents(t, d, task.EventsURL+"?since="+strconv.FormatInt(mid.ID, 10), ""), nil)
	if len(since) != len(replay) {
		t.Fatalf("?since= gave %d events, Last-Event-ID %d", len(since), len(replay))
	}
}

func TestTaskCancelTimeoutConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	taskSandbox(t, d, "ctl")
	task := startTask(t, d, "ctl", map[string]any{"prompt": "sleep=120", "agent": "opencode"})
	// Wait until the agent speaks, then a second task is refused with the active one named.
	first := make(chan struct{})
	go readTaskSSE(t, openEvents(t, d, task.EventsURL, ""), func(ev taskEvent) {
		if ev.Type == "message" {
			select {
			case <-first:
			default:
				close(first)
			}
		}
	})
	select {
	case <-first:
	case <-time.After(time.Minute):
		t.Fatal("no message from the agent")
	}
	var conflict struct {
		Error struct{ Code, Message string }
	}
	if code := call(t, "POST", d.API+"/v1/sandboxes/ctl/tasks", map[string]any{"prompt": "again"}, &conflict); code != 409 || !strings.Contains(conflict.Error.Message, task.ID) {
		t.Fatalf("second task: %d %+v", code, conflict)
	}
	start := time.Now()
	var cancelled taskJSON
	if code := call(t, "POST", d.API+"/v1/sandboxes/ctl/tasks/"+task.ID+"/cancel", nil, &cancelled); code != 200 {
		t.Fatalf("cancel: %d", code)
	}
	if cancelled.Status != "cancelled" || time.Since(start) > 6*time.Second {
		t.Fatalf("cancel took %s: %+v", time.Since(start), cancelled)
	}
	testutil.Eventually(t, 10*time.Second, "no agent process left", func() bool {
		return !strings.Contains(mustExec(t, d, "ctl", "ps", "-o", "args").Stdout, "sleep=120")
	})

	timed := startTask(t, d, "ctl", map[string]any{"prompt": "sleep=120", "agent": "claude", "timeout": "2s"})
	readTaskSSE(t, openEvents(t, d, timed.EventsURL, ""), nil)
	if got := getTask(t, d, "ctl", timed.ID); got.Status != "failed" || got.FailureReason != "timeout" {
		t.Fatalf("timed-out task: %+v", got)
	}
}

// A task on a stopped sandbox wakes it; an agent the image lacks answers 422 with how to
// get it; a failing agent ends failed with its error.
func TestTaskWakeMissingAgentAndFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	taskSandbox(t, d, "wk")
	if code := call(t, "POST", d.API+"/v1/sandboxes/wk/stop", nil, nil); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	task := startTask(t, d, "wk", map[string]any{"prompt": "write it", "agent": "claude"})
	readTaskSSE(t, openEvents(t, d, task.EventsURL, ""), nil)
	if got := getTask(t, d, "wk", task.ID); got.Status != "succeeded" {
		t.Fatalf("task on a stopped sandbox: %+v", got)
	}

	failed := startTask(t, d, "wk", map[string]any{"prompt": "please fail", "agent": "opencode"})
	readTaskSSE(t, openEvents(t, d, failed.EventsURL, ""), nil)
	if got := getTask(t, d, "wk", failed.ID); got.Status != "failed" || got.FailureReason != "agent_error" {
		t.Fatalf("failing agent: %+v", got)
	}

	img := buildImage(t, e, "sandboxd/testkit-claude-only:test", "FROM sandboxd/testkit:latest\nLABEL sandboxd.agents=claude\n")
	mustCreate(t, d, map[string]any{"id": "noagent", "image": img})
	var body struct {
		Error struct{ Code, Message string }
	}
	code := call(t, "POST", d.API+"/v1/sandboxes/noagent/tasks", map[string]any{"prompt": "x", "agent": "opencode"}, &body)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body.Error.Message, "make image") {
		t.Fatalf("missing agent: %d %+v", code, body)
	}
	var images struct {
		Images []struct {
			Image   string
			Agents  []string
			Missing []string
		}
	}
	call(t, "GET", d.API+"/v1/images", nil, &images)
	found := false
	for _, im := range images.Images {
		if im.Image == img && len(im.Missing) == 1 && im.Missing[0] == "opencode" {
			found = true
		}
	}
	if !found {
		t.Fatalf("/v1/images does not report the missing agent: %+v", images)
	}
}

// kill -9 of sandboxd mid-task: the agent goes on in the container, the next sandboxd
// resumes the task, and its events continue without a gap or a repeat.
func TestTaskSurvivesSandboxdKill(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.startProcess(nil)
	taskSandbox(t, p.daemon, "rs")
	task := startTask(t, p.daemon, "rs", map[string]any{"prompt": "sleep=4 then write", "agent": "claude"})
	got := make(chan struct{})
	go readTaskSSE(t, openEvents(t, p.daemon, task.EventsURL, ""), func(ev taskEvent) {
		if ev.Type == "message" {
			select {
			case <-got:
			default:
				close(got)
			}
		}
	})
	select {
	case <-got:
	case <-time.After(time.Minute):
		t.Fatal("no message before the kill")
	}
	p.kill9(t)
	d := e.start()
	events := readTaskSSE(t, openEvents(t, d, task.EventsURL, ""), nil)
	for i, ev := range events {
		if ev.ID != int64(i+1) {
			t.Fatalf("event ids after the restart: %d at %d", ev.ID, i)
		}
	}
	dones := 0
	for _, ev := range events {
		if ev.Type == "done" {
			dones++
		}
	}
	if final := getTask(t, d, "rs", task.ID); final.Status != "succeeded" || dones != 1 {
		t.Fatalf("resumed task: %+v (%d done events)", final, dones)
	}
}

// buildImage builds a tiny image through the Engine API and removes it at cleanup.
func buildImage(t *testing.T, e *env, tag, dockerfile string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))})
	tw.Write([]byte(dockerfile))
	tw.Close()
	ctx := context.Background()
	resp, err := e.docker.ImageBuild(ctx, &buf, types.ImageBuildOptions{Tags: []string{tag}, Remove: true})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(out, []byte(`"error"`)) {
		t.Fatalf("build %s: %s", tag, out)
	}
	// The sandbox made from it must go first: an image a container uses is only untagged,
	// and its layers would stay behind.
	t.Cleanup(func() {
		dockertest.RemoveInstance(t, e.docker, lifecycle.InstanceOf(e.data()))
		if _, err := e.docker.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Logf("cleanup: remove image %s: %v", tag, err)
		}
	})
	return tag
}
