package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/gorilla/websocket"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// engineTime formats t for the Engine's events API (Unix seconds with nanoseconds).
func engineTime(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// sandboxEvents filters the Engine's container events of one sandbox of e's instance.
func (e *env) sandboxEvents(id string, actions ...events.Action) filters.Args {
	f := filters.NewArgs(filters.Arg("type", "container"),
		filters.Arg("label", "sandboxd.instance="+lifecycle.InstanceOf(e.data())),
		filters.Arg("label", "sandboxd.id="+id))
	for _, a := range actions {
		f.Add("event", string(a))
	}
	return f
}

// containerStarts counts the starts of a sandbox's container the Engine recorded between
// since and until.
func (e *env) containerStarts(t *testing.T, id string, since, until time.Time) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs, errs := e.docker.Events(ctx, events.ListOptions{Since: engineTime(since), Until: engineTime(until),
		Filters: e.sandboxEvents(id, events.ActionStart)})
	n := 0
	for {
		select {
		case <-msgs:
			n++
		case err := <-errs:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("events: %v", err)
			}
			return n
		}
	}
}

// A restart loses nothing: SIGTERM closes an open WebSocket with a Close frame (1001),
// lets a response in flight finish, and leaves the sandbox running; the next sandboxd
// adopts it and its preview answers at once, without starting the container.
func TestRestartLosesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.startProcess(nil)
	created := time.Now()
	mustCreate(t, p.daemon, map[string]any{"id": "keep", "ports": []int{3000}})
	if resp, body := preview(t, p.daemon, "keep", 3000, "GET", "/", "", nil); resp.StatusCode != 200 || body != "hello from keep" {
		t.Fatalf("preview before the restart: %d %q", resp.StatusCode, body)
	}
	name := e.containerName("keep")
	before, err := e.docker.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	ws := dialWS(t, p.daemon, "keep", 3000)
	wsEcho(t, ws, "before the restart")

	// A response in flight: an event stream whose first tick is here and whose second
	// and last is 1.5s away.
	req, _ := http.NewRequest("GET", "http://"+p.HTTP+"/sse?n=2&ms=1500", nil)
	req.Host = "s-keep-3000.preview.localhost"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sse := bufio.NewReader(resp.Body)
	for line := ""; !strings.HasPrefix(line, "data: tick 1"); {
		if line, err = sse.ReadString('\n'); err != nil {
			t.Fatalf("first tick: %v", err)
		}
	}

	since := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- p.stop() }() // SIGTERM, then wait for the exit

	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("WebSocket at SIGTERM: %v; want a Close frame with 1001 (going away)", err)
	}
	rest, err := io.ReadAll(sse)
	if err != nil || !strings.Contains(string(rest), "data: tick 2") {
		t.Errorf("event stream across SIGTERM: %q, %v; want it to finish", rest, err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("sandboxd's exit after SIGTERM: %v\n%s", err, p.logs)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("sandboxd did not exit after SIGTERM\n%s", p.logs)
	}

	after, err := e.docker.ContainerInspect(context.Background(), before.ID)
	if err != nil || !after.State.Running || after.State.StartedAt != before.State.StartedAt {
		t.Fatalf("the sandbox did not keep running across the stop: %v %+v", err, after.State)
	}

	d2 := e.start()
	if resp, body := preview(t, d2, "keep", 3000, "GET", "/", "", nil); resp.StatusCode != 200 || body != "hello from keep" {
		t.Fatalf("preview right after the restart: %d %q", resp.StatusCode, body)
	}
	wsEcho(t, dialWS(t, d2, "keep", 3000), "after the restart")
	if n := e.containerStarts(t, "keep", created, since); n != 1 { // the count works
		t.Fatalf("starts from create to SIGTERM = %d, want 1", n)
	}
	if n := e.containerStarts(t, "keep", since, time.Now()); n != 0 {
		t.Fatalf("the container was started %d times across the restart; want none", n)
	}
}

// A request held while its sandbox wakes when SIGTERM arrives is still answered: the
// drain waits for it (up to the wake timeout).
func TestRestartDrainsHeldWake(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.startProcess(nil)
	// Port 3001 opens only once the test creates ~/go: the wake holds the request until then.
	gate := `until [ -e /home/sandbox/go ]; do sleep 0.05; done; exec devserver`
	mustCreate(t, p.daemon, map[string]any{"id": "late", "ports": []int{3000, 3001}, "services": []map[string]any{
		{"name": "gated", "cmd": []string{"sh", "-c", gate}, "env": map[string]string{"PORT": "3001"}, "port": 3001}}})
	if code := call(t, "POST", p.API+"/v1/sandboxes/late/stop", nil, nil); code != 200 {
		t.Fatalf("stop: %d", code)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Since replays what happened after now even if the subscription lands late.
	starts, errs := e.docker.Events(ctx, events.ListOptions{Since: engineTime(time.Now()),
		Filters: e.sandboxEvents("late", events.ActionStart)})
	type answer struct {
		code int
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+p.HTTP+"/", nil)
		req.Host = "s-late-3001.preview.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, string(b), err}
	}()
	select {
	case <-starts: // the wake started the container; the request waits for port 3001
	case err := <-errs:
		t.Fatalf("events: %v", err)
	case a := <-answered:
		t.Fatalf("answered before the port opened: %+v", a)
	case <-time.After(2 * time.Minute):
		t.Fatalf("the request did not wake the sandbox\n%s", p.logs)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- p.stop() }()
	logged(t, p.daemon, time.Minute, 1, `"msg":"shutting down`)
	if err := os.WriteFile(filepath.Join(e.data(), "workspaces", "late", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-answered:
		if a.err != nil || a.code != 200 || a.body != "hello from late" {
			t.Fatalf("held request across SIGTERM: %+v; want it answered", a)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the held request was not answered\n%s", p.logs)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("sandboxd's exit after the drain: %v\n%s", err, p.logs)
	}
}
