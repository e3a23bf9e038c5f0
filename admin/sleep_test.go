package admin

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// Issue 14: create takes wake_on and stop_after and the view shows them; pause answers the
// sandbox paused, resume wakes it through the waker, like start.
func TestSleepFieldsAndRoutes(t *testing.T) {
	pausedAt := time.Date(2030, 1, 2, 15, 0, 0, 0, time.UTC)
	sb := store.Sandbox{ID: "a", Status: store.StatusRunning}
	var got lifecycle.CreateRequest
	var calls []string
	d := Deps{
		Sandboxes: &fakeSandboxes{
			CreateFn: func(_ context.Context, req lifecycle.CreateRequest) (store.Sandbox, error) {
				got = req
				return store.Sandbox{ID: "a", Status: store.StatusRunning, WakeOn: req.WakeOn, StopAfter: req.StopAfter}, nil
			},
			GetFn: func(context.Context, string) (store.Sandbox, error) { return sb, nil },
			PauseFn: func(context.Context, string) error {
				calls = append(calls, "pause")
				sb.Status, sb.PausedAt = store.StatusPaused, pausedAt
				return nil
			},
		},
		Waker: &fakeWaker{WakeFn: func(context.Context, string, int) (netip.AddrPort, error) {
			calls = append(calls, "wake")
			sb.Status, sb.PausedAt = store.StatusRunning, time.Time{}
			return netip.AddrPort{}, nil
		}},
	}
	type view struct {
		Status    string     `json:"status"`
		WakeOn    string     `json:"wake_on"`
		StopAfter string     `json:"stop_after"`
		PausedAt  *time.Time `json:"paused_at"`
	}
	decode := func(body string) view {
		var v view
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		return v
	}

	code, body, _ := apiCall(t, d, "POST", "/v1/sandboxes", `{"wake_on":"any","stop_after":"30m"}`)
	if v := decode(body); code != 201 || got.WakeOn != "any" || got.StopAfter != 30*time.Minute || v.WakeOn != "any" || v.StopAfter != "30m0s" {
		t.Fatalf("create: %d %s; asked %+v", code, body, got)
	}
	code, body, e := apiCall(t, d, "POST", "/v1/sandboxes", `{"stop_after":true}`)
	if code != 400 || !strings.Contains(e.Error.Message, "stop_after") {
		t.Fatalf("create with a bad stop_after: %d %s", code, body)
	}

	code, body, _ = apiCall(t, d, "POST", "/v1/sandboxes/a/pause", "")
	if v := decode(body); code != 200 || v.Status != "paused" || v.PausedAt == nil || !v.PausedAt.Equal(pausedAt) || v.WakeOn != "navigation" {
		t.Fatalf("pause: %d %s", code, body)
	}
	code, body, _ = apiCall(t, d, "POST", "/v1/sandboxes/a/resume", "")
	if v := decode(body); code != 200 || v.Status != "running" || v.PausedAt != nil {
		t.Fatalf("resume: %d %s", code, body)
	}
	if strings.Join(calls, ",") != "pause,wake" {
		t.Fatalf("calls %v, want pause then wake", calls)
	}
}
