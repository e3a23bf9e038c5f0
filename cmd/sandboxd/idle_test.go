package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// Idle sandboxes go to sleep (paused: issue 14) after their idle timeout; WebSocket traffic,
// an exec in flight and a keepalive each keep one awake for as long as they last.
func TestIdleStop(t *testing.T) {
	e := newEnv(t)
	e.vars["SANDBOXD_ACTIVITY_INTERVAL"] = "100ms"
	e.vars["SANDBOXD_IDLE_TIMEOUT"] = "2s"
	d := e.start()
	status := func(id string) string {
		sb, code := getSandbox(t, d, id)
		if code != http.StatusOK {
			t.Fatalf("get %s: %d", id, code)
		}
		return sb.Status
	}
	// awakeWhile asserts id stays running while busy runs, then sleeps once idle.
	// It watches for 2.5 idle timeouts, or until end when that comes sooner.
	awakeWhile := func(t *testing.T, id string, end time.Time, busy func(done <-chan struct{})) {
		done := make(chan struct{})
		finished := make(chan struct{})
		go func() { defer close(finished); busy(done) }()
		deadline := time.Now().Add(5 * time.Second)
		if !end.IsZero() && end.Before(deadline) {
			deadline = end
		}
		for time.Now().Before(deadline) {
			if s := status(id); s != "running" {
				close(done)
				<-finished // the busy work does not outlive the test
				t.Fatalf("%s is %s while busy", id, s)
			}
			time.Sleep(100 * time.Millisecond) // sampling the state over time, not ordering
		}
		close(done)
		<-finished
		testutil.Eventually(t, 20*time.Second, id+" to sleep once idle", func() bool { return status(id) == "paused" })
	}

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		mustCreate(t, d, map[string]any{"id": "idle", "ports": []int{3000}})
		testutil.Eventually(t, 20*time.Second, "idle to sleep", func() bool { return status("idle") == "paused" })
	})
	t.Run("per-sandbox timeout and always_on", func(t *testing.T) {
		t.Parallel()
		mustCreate(t, d, map[string]any{"id": "never", "idle_policy": "always_on", "idle_timeout": "1s"})
		mustCreate(t, d, map[string]any{"id": "quick", "idle_timeout": "1s"})
		testutil.Eventually(t, 20*time.Second, "quick to sleep", func() bool { return status("quick") == "paused" })
		time.Sleep(2 * time.Second) // two more idle timeouts pass (observing, not ordering)
		if s := status("never"); s != "running" {
			t.Fatalf("always_on sandbox is %s", s)
		}
	})
	t.Run("websocket traffic", func(t *testing.T) {
		t.Parallel()
		mustCreate(t, d, map[string]any{"id": "wsbusy", "ports": []int{3000}})
		c := dialWS(t, d, "wsbusy", 3000)
		awakeWhile(t, "wsbusy", time.Time{}, func(done <-chan struct{}) {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				case <-time.After(300 * time.Millisecond):
					wsEcho(t, c, fmt.Sprint("ping ", i))
				}
			}
		})
	})
	t.Run("exec in flight", func(t *testing.T) {
		t.Parallel()
		mustCreate(t, d, map[string]any{"id": "execbusy"})
		awakeWhile(t, "execbusy", time.Time{}, func(<-chan struct{}) {
			mustExec(t, d, "execbusy", "sleep", "6")
		})
	})
	t.Run("keepalive", func(t *testing.T) {
		t.Parallel()
		mustCreate(t, d, map[string]any{"id": "kept"})
		var first, second struct {
			Until time.Time `json:"keepalive_until"`
		}
		if code := call(t, "POST", d.API+"/v1/sandboxes/kept/keepalive", map[string]any{"seconds": 8}, &first); code != 200 || first.Until.IsZero() {
			t.Fatalf("keepalive: %d %+v", code, first)
		}
		// A shorter keepalive does not cut the one in force, and the answer says which holds.
		if code := call(t, "POST", d.API+"/v1/sandboxes/kept/keepalive", map[string]any{"seconds": 1}, &second); code != 200 || !second.Until.Equal(first.Until) {
			t.Fatalf("second keepalive: %d, until %v, want the first's %v", code, second.Until, first.Until)
		}
		// Watched while the keepalive holds: once it ends the sandbox may sleep at once.
		awakeWhile(t, "kept", first.Until.Add(-time.Second), func(<-chan struct{}) {})
	})
}

// Keepalive on a stopped sandbox wakes it and answers it running: "keep it awake" means
// awake (issue 10: it answered 200 and left it stopped). A keepalive that asks for a time
// already passed, or for seconds past any clock, is refused and wakes nothing.
func TestKeepaliveWakesStopped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "nap", "ports": []int{3000}})
	var sb sandboxJSON
	if code := call(t, "POST", d.API+"/v1/sandboxes/nap/stop", nil, &sb); code != http.StatusOK || sb.Status != "stopped" {
		t.Fatalf("stop: %d %+v", code, sb)
	}
	for _, c := range []struct{ field, body string }{
		{"seconds", `{"seconds":1e300}`}, {"seconds", `{"seconds":-1}`}, {"until", `{"until":"2001-01-01T00:00:00Z"}`},
	} {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if code := call(t, "POST", d.API+"/v1/sandboxes/nap/keepalive", c.body, &e); code != http.StatusBadRequest ||
			!strings.HasPrefix(e.Error.Message, c.field+" must") {
			t.Fatalf("keepalive %s: %d %+v, want 400 naming %s", c.body, code, e, c.field)
		}
	}
	if got, _ := getSandbox(t, d, "nap"); got.Status != "stopped" {
		t.Fatalf("a refused keepalive changed the sandbox: %+v", got)
	}
	var kept struct {
		sandboxJSON
		Until time.Time `json:"keepalive_until"`
	}
	if code := call(t, "POST", d.API+"/sandbox/nap/keepalive", map[string]any{"seconds": 600}, &kept); code != http.StatusOK ||
		kept.Status != "running" || kept.ID != "nap" || time.Until(kept.Until) < 5*time.Minute {
		t.Fatalf("keepalive: %d %+v", code, kept)
	}
	if got, _ := getSandbox(t, d, "nap"); got.Status != "running" {
		t.Fatalf("after keepalive: %+v", got)
	}
	mustPreview(t, d, "nap", 3000, "/", "hello from nap")
}
