package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/gorilla/websocket"
	"github.com/sandboxd/sandboxd/internal/testutil"
)

// Issue 14's proofs against the real engine: background requests do not wake a sleeping
// sandbox, sleep is a pause that a wake undoes warm, and paused sandboxes outlive a restart.

// fetchMeta is the fetch metadata a browser sends with each kind of request.
var fetchMeta = struct{ navigation, fetch, websocket http.Header }{
	navigation: http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}, "Sec-Fetch-Site": {"none"}, "Sec-Fetch-User": {"?1"},
		"Accept": {"text/html,application/xhtml+xml"}},
	fetch:     http.Header{"Sec-Fetch-Mode": {"cors"}, "Sec-Fetch-Dest": {"empty"}, "Sec-Fetch-Site": {"same-origin"}},
	websocket: http.Header{"Sec-Fetch-Mode": {"websocket"}, "Sec-Fetch-Dest": {"websocket"}, "Sec-Fetch-Site": {"same-origin"}},
}

// engineEvents counts a sandbox's container events of the given actions that the engine
// recorded between since and until.
func (e *env) engineEvents(t *testing.T, id string, since, until time.Time, actions ...events.Action) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs, errs := e.docker.Events(ctx, events.ListOptions{Since: engineTime(since), Until: engineTime(until),
		Filters: e.sandboxEvents(id, actions...)})
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

// wakes counts the starts and unpauses of a sandbox's container between since and now.
func (e *env) wakes(t *testing.T, id string, since time.Time) int {
	return e.engineEvents(t, id, since, time.Now(), events.ActionStart, events.ActionUnPause)
}

// reloadClient behaves like a dev server's live-reload client in an open tab: it holds a
// WebSocket to the preview with the browser's fetch metadata and, whenever it closes or
// fails, reconnects, every 50 ms (real clients wait about a second; faster is harsher).
type reloadClient struct {
	attempts atomic.Int32 // connects tried
	opened   atomic.Int32 // connects that upgraded
	refused  atomic.Int32 // connects answered 503 with X-Sandboxd-State: sleeping

	mu  sync.Mutex
	odd []string // any other answer

	stop func()
}

func startReloadClient(t *testing.T, d *daemon, id string) *reloadClient {
	c := &reloadClient{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(c.stop)
	dialer := websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", d.HTTP)
		},
		HandshakeTimeout: time.Minute,
	}
	header := fetchMeta.websocket.Clone()
	header.Set("Origin", fmt.Sprintf("http://s-%s-3000.preview.localhost", id))
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			c.attempts.Add(1)
			conn, resp, err := dialer.DialContext(ctx, fmt.Sprintf("ws://s-%s-3000.preview.localhost/ws", id), header)
			switch {
			case err == nil:
				c.opened.Add(1)
				stop := context.AfterFunc(ctx, func() { conn.Close() })
				for {
					if _, _, err := conn.ReadMessage(); err != nil {
						break // closed: reconnect, as live-reload clients do
					}
				}
				stop()
				conn.Close()
			case resp != nil && resp.StatusCode == http.StatusServiceUnavailable &&
				resp.Header.Get("X-Sandboxd-State") == "sleeping" && resp.Header.Get("Retry-After") != "":
				c.refused.Add(1)
			case ctx.Err() == nil:
				c.mu.Lock()
				c.odd = append(c.odd, fmt.Sprintf("%v %+v", err, resp))
				c.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond): // the client's retry pace, not ordering
			}
		}
	}()
	return c
}

func (c *reloadClient) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.odd) > 0 {
		t.Fatalf("the live-reload client got %d unexpected answers, the first: %s", len(c.odd), c.odd[0])
	}
}

func status(t *testing.T, d *daemon, id string) string {
	t.Helper()
	sb, code := getSandbox(t, d, id)
	if code != http.StatusOK {
		t.Fatalf("get %s: %d", id, code)
	}
	return sb.Status
}

func mustPost(t *testing.T, d *daemon, path string, want string) {
	t.Helper()
	var sb sandboxJSON
	if code := call(t, "POST", d.API+path, nil, &sb); code != http.StatusOK || sb.Status != want {
		t.Fatalf("POST %s: %d %+v, want %s", path, code, sb, want)
	}
}

// A page left open does not keep its sandbox awake. Its live-reload client reconnects
// without end while the sandbox is stopped, and its background fetches go on while it is
// paused: each gets a quick 503, and the engine records no start and no unpause. A
// navigation wakes the sandbox, and so does a client without browser headers (curl). With
// wake_on "any" the reconnect wakes it.
func TestBackgroundRequestsDoNotWake(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "tab", "ports": []int{3000}})
	mustCreate(t, d, map[string]any{"id": "tabany", "ports": []int{3000}, "wake_on": "any"})

	t.Run("stopped", func(t *testing.T) {
		client := startReloadClient(t, d, "tab")
		testutil.Eventually(t, time.Minute, "the live-reload client to connect", func() bool { return client.opened.Load() == 1 })
		mustPost(t, d, "/v1/sandboxes/tab/stop", "stopped")
		since := time.Now()
		// The stop closed the client's WebSocket; it keeps reconnecting, and keeps being
		// refused, for 2 s and at least 30 tries.
		refusedBefore := client.refused.Load()
		testutil.Eventually(t, time.Minute, "30 refused reconnects", func() bool { return client.refused.Load() >= refusedBefore+30 })
		if left := time.Until(since.Add(2 * time.Second)); left > 0 {
			time.Sleep(left) // observing a window in which nothing may happen, not ordering
		}
		if n := e.wakes(t, "tab", since); n != 0 || status(t, d, "tab") != "stopped" || client.opened.Load() != 1 {
			t.Fatalf("after %d refused reconnects: %d starts or unpauses, status %s, %d connects upgraded",
				client.refused.Load()-refusedBefore, n, status(t, d, "tab"), client.opened.Load())
		}
		client.check(t)

		// A person opens the page: it wakes (a slow start shows the starting page, which
		// reloads, as a browser would), and the client gets back in.
		testutil.Eventually(t, time.Minute, "the navigation to get the app", func() bool {
			resp, body := preview(t, d, "tab", 3000, "GET", "/", "", fetchMeta.navigation)
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("X-Sandboxd-State") == "starting" {
				return false
			}
			if resp.StatusCode != http.StatusOK || body != "hello from tab" {
				t.Fatalf("navigation: %d %q", resp.StatusCode, body)
			}
			return true
		})
		testutil.Eventually(t, time.Minute, "the client to reconnect", func() bool { return client.opened.Load() == 2 })
		client.stop()
		client.check(t)
	})

	t.Run("paused", func(t *testing.T) {
		ws := dialWS(t, d, "tab", 3000) // a tab whose live-reload socket is open when the pause comes
		mustPost(t, d, "/v1/sandboxes/tab/pause", "paused")
		since := time.Now()
		refused := 0
		for range 30 {
			resp, _ := preview(t, d, "tab", 3000, "GET", "/", "", fetchMeta.fetch)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Sandboxd-State") != "sleeping" {
				t.Fatalf("background fetch to a paused sandbox: %d %v", resp.StatusCode, resp.Header)
			}
			refused++
		}
		if n := e.wakes(t, "tab", since); n != 0 || status(t, d, "tab") != "paused" {
			t.Fatalf("after %d background fetches: %d starts or unpauses, status %s", refused, n, status(t, d, "tab"))
		}
		// curl wakes it; the WebSocket opened before the pause was frozen, not closed.
		resp, body := preview(t, d, "tab", 3000, "GET", "/", "", nil)
		if resp.StatusCode != http.StatusOK || body != "hello from tab" || status(t, d, "tab") != "running" {
			t.Fatalf("curl: %d %q, status %s", resp.StatusCode, body, status(t, d, "tab"))
		}
		if n := e.engineEvents(t, "tab", since, time.Now(), events.ActionUnPause); n != 1 {
			t.Fatalf("curl's wake: %d unpauses, want 1", n)
		}
		wsEcho(t, ws, "still here after the freeze")
	})

	t.Run("wake_on any", func(t *testing.T) {
		client := startReloadClient(t, d, "tabany")
		testutil.Eventually(t, time.Minute, "the client to connect", func() bool { return client.opened.Load() == 1 })
		since := time.Now()
		mustPost(t, d, "/v1/sandboxes/tabany/stop", "stopped")
		testutil.Eventually(t, time.Minute, "the reconnect to wake the sandbox", func() bool { return client.opened.Load() >= 2 })
		if n := e.wakes(t, "tabany", since); n < 1 || status(t, d, "tabany") != "running" {
			t.Fatalf("wake_on any: %d starts, status %s", n, status(t, d, "tabany"))
		}
		client.stop()
		client.check(t)
	})
}

// count reads the devserver's in-memory counter through the preview, as curl would.
func count(t *testing.T, d *daemon, id string) string {
	t.Helper()
	resp, body := preview(t, d, id, 3000, "GET", "/count", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /count: %d %q", resp.StatusCode, body)
	}
	return body
}

func pid(t *testing.T, d *daemon, id string) string {
	t.Helper()
	resp, body := preview(t, d, id, 3000, "GET", "/pid", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /pid: %d %q", resp.StatusCode, body)
	}
	return body
}

// Sleep is warm first: an idle sandbox is paused, a preview request wakes it by unpausing,
// and the same dev server process answers with its memory intact. The files API works on
// a paused sandbox without waking it; an exec wakes it. Paused past its stop_after, a
// sandbox is stopped.
func TestWarmSleep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["SANDBOXD_ACTIVITY_INTERVAL"] = "100ms"
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "warm", "ports": []int{3000}, "idle_timeout": "1s", "stop_after": "1h"})
	mustCreate(t, d, map[string]any{"id": "brief", "ports": []int{3000}, "idle_timeout": "1s", "stop_after": "1s"})
	created := time.Now()

	if got := count(t, d, "warm") + count(t, d, "warm"); got != "12" {
		t.Fatalf("counts %q, want 1 then 2", got)
	}
	before := pid(t, d, "warm")
	testutil.Eventually(t, 30*time.Second, "the idle sandbox to be paused", func() bool { return status(t, d, "warm") == "paused" })
	// The API says paused from just before the freeze (a request meanwhile waits and then
	// unpauses); the engine follows once runc has frozen the cgroup, which may take a retry.
	testutil.Eventually(t, 30*time.Second, "the engine to show the container paused", func() bool {
		info, err := e.docker.ContainerInspect(context.Background(), e.containerName("warm"))
		return err == nil && info.State.Paused
	})

	files := d.API + "/v1/sandboxes/warm/files?path=workspace/app/note.txt"
	if code := call(t, "PUT", files, "written while paused", nil); code != http.StatusCreated || status(t, d, "warm") != "paused" {
		t.Fatalf("files API on a paused sandbox: %d, status %s", code, status(t, d, "warm"))
	}

	since := time.Now()
	if got := count(t, d, "warm"); got != "3" {
		t.Fatalf("after the wake the counter says %q, want 3: the process lost its memory", got)
	}
	if after := pid(t, d, "warm"); after != before {
		t.Fatalf("after the wake the dev server's pid is %s, was %s", after, before)
	}
	if starts, unpauses := e.engineEvents(t, "warm", since, time.Now(), events.ActionStart),
		e.engineEvents(t, "warm", since, time.Now(), events.ActionUnPause); starts != 0 || unpauses != 1 {
		t.Fatalf("the wake: %d starts and %d unpauses, want 0 and 1", starts, unpauses)
	}

	testutil.Eventually(t, 30*time.Second, "the sandbox to be paused again", func() bool { return status(t, d, "warm") == "paused" })
	if res := mustExec(t, d, "warm", "cat", "workspace/app/note.txt"); res.Stdout != "written while paused" {
		t.Fatalf("exec in a paused sandbox: %+v", res)
	}
	if got := count(t, d, "warm"); got != "4" || pid(t, d, "warm") != before {
		t.Fatalf("after the exec woke it: count %q", got)
	}

	testutil.Eventually(t, 30*time.Second, "brief to be stopped after its stop_after", func() bool { return status(t, d, "brief") == "stopped" })
	if n := e.engineEvents(t, "brief", created, time.Now(), events.ActionPause); n != 1 {
		t.Fatalf("brief was paused %d times before it stopped, want once", n)
	}
	if v := scrape(t, d, `sandboxd_sandbox_stops_total{reason="stop_after"}`); v != 1 {
		t.Fatalf("stops by stop_after = %v, want 1", v)
	}
	if v := scrape(t, d, `sandboxd_sandbox_pauses_total{reason="idle"}`); v < 3 {
		t.Fatalf("idle pauses = %v, want at least 3", v)
	}
}

// Paused sandboxes outlive a restart of sandboxd: still paused after it, and woken by an
// unpause that finds the same process. One paused behind sandboxd's back is seen paused
// (engine events); one unpaused behind its back while it was down is seen running.
func TestPausedAcrossRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sandboxd's log:\n%s", d.logs)
		}
	})
	mustCreate(t, d, map[string]any{"id": "nap", "ports": []int{3000}})
	mustCreate(t, d, map[string]any{"id": "side", "ports": []int{3000}})
	if got := count(t, d, "nap"); got != "1" {
		t.Fatalf("count %q", got)
	}
	before := pid(t, d, "nap")
	mustPost(t, d, "/v1/sandboxes/nap/pause", "paused")
	ctx := context.Background()
	if err := e.docker.ContainerPause(ctx, e.containerName("side")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "sandboxd to see side paused", func() bool { return status(t, d, "side") == "paused" })
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if err := e.docker.ContainerUnpause(ctx, e.containerName("side")); err != nil {
		t.Fatal(err)
	}

	d = e.start()
	if st, side := status(t, d, "nap"), status(t, d, "side"); st != "paused" || side != "running" {
		t.Fatalf("after the restart: nap %s, side %s; want paused and running", st, side)
	}
	since := time.Now()
	if got := count(t, d, "nap"); got != "2" || pid(t, d, "nap") != before {
		t.Fatalf("after the restart the wake found count %q: not the same process", got)
	}
	if n := e.engineEvents(t, "nap", since, time.Now(), events.ActionStart); n != 0 {
		t.Fatalf("the wake after a restart started the container %d times", n)
	}
	if v := scrape(t, d, `sandboxd_wakes_total{outcome="unpaused"}`); v != 1 {
		t.Fatalf("wakes by unpause after the restart = %v, want 1", v)
	}
}
