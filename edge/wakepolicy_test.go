package edge

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/wake"
)

// Fetch metadata as browsers send it (Chrome's, for each kind of request).
var (
	navigationHeaders = map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none", "Sec-Fetch-User": "?1"}
	iframeHeaders     = map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"}
	fetchHeaders      = map[string]string{"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Sec-Fetch-Site": "same-origin"}
	scriptHeaders     = map[string]string{"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script", "Sec-Fetch-Site": "same-origin"}
	websocketHeaders  = map[string]string{"Sec-Fetch-Mode": "websocket", "Sec-Fetch-Dest": "websocket", "Sec-Fetch-Site": "same-origin"}
	prefetchHeaders   = map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "same-origin", "Sec-Purpose": "prefetch;prerender"}
)

func TestRequestKind(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    wake.Kind
	}{
		{"tab navigation", navigationHeaders, wake.Navigation},
		{"iframe navigation", iframeHeaders, wake.Navigation},
		{"early Chrome frame", map[string]string{"Sec-Fetch-Mode": "nested-navigate"}, wake.Navigation},
		{"fetch", fetchHeaders, wake.Background},
		{"script", scriptHeaders, wake.Background},
		{"websocket", websocketHeaders, wake.Background},
		{"prerender", prefetchHeaders, wake.Background},
		{"only Sec-Fetch-Site", map[string]string{"Sec-Fetch-Site": "same-origin"}, wake.Background},
		{"curl", nil, wake.Program},
		{"webhook", map[string]string{"User-Agent": "GitHub-Hookshot/1", "X-GitHub-Event": "push"}, wake.Program},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://x/", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			if got := requestKind(r); got != tc.want {
				t.Fatalf("requestKind = %s, want %s", got, tc.want)
			}
		})
	}
}

// A sleeping (stopped or paused) sandbox with the default policy: a page's background
// requests, its WebSocket reconnects included, get a quick 503 that says so and wake
// nothing; a navigation, an iframe and a program wake it. With wake_on "any" everything
// wakes it; a running or starting sandbox is not asleep, so the policy does not apply.
func TestSleepingSandboxWakePolicy(t *testing.T) {
	h := newHarness(t)
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	get := func(headers map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", previewURL("sb1", port, "/"), nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	for _, state := range []State{Asleep, Paused} {
		t.Run(state.String(), func(t *testing.T) {
			h.table.Set(Route{ID: "sb1", State: state, Addr: loopback, Ports: []int{port}})
			before := h.waker.calls.Load()
			for name, headers := range map[string]map[string]string{"fetch": fetchHeaders, "script": scriptHeaders, "prefetch": prefetchHeaders} {
				res := get(headers)
				raw, _ := io.ReadAll(res.Body)
				var body struct {
					Error struct{ Code, Message string }
				}
				json.Unmarshal(raw, &body)
				// A prefetch is labelled a navigation, so it is answered the page a person
				// would see; the others are answered JSON.
				ok := body.Error.Code == "sandbox_sleeping" || name == "prefetch" && strings.Contains(string(raw), "Sandbox asleep")
				if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("X-Sandboxd-State") != "sleeping" ||
					res.Header.Get("Retry-After") != "5" || !ok {
					t.Fatalf("%s: %d, state %q, Retry-After %q, %s", name, res.StatusCode,
						res.Header.Get("X-Sandboxd-State"), res.Header.Get("Retry-After"), raw)
				}
			}
			ws := http.Header{}
			for k, v := range websocketHeaders {
				ws.Set(k, v)
			}
			c, res, err := h.wsDialer().Dial("ws://"+previewHost("sb1", port)+"/", ws)
			if err == nil {
				c.Close()
				t.Fatal("a WebSocket connect to a sleeping sandbox was upgraded")
			}
			if res == nil || res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("X-Sandboxd-State") != "sleeping" {
				t.Fatalf("WebSocket connect: %v %+v", err, res)
			}
			if n := h.waker.calls.Load() - before; n != 0 {
				t.Fatalf("background requests woke the sandbox %d times", n)
			}
			for name, headers := range map[string]map[string]string{"navigation": navigationHeaders, "iframe": iframeHeaders, "program": nil} {
				before := h.waker.calls.Load()
				if res := get(headers); res.StatusCode != http.StatusOK || h.waker.calls.Load() != before+1 {
					t.Fatalf("%s: %d after %d wakes, want 200 after one", name, res.StatusCode, h.waker.calls.Load()-before)
				}
			}
		})
	}
	t.Run("wake_on any", func(t *testing.T) {
		h.table.Set(Route{ID: "sb1", State: Paused, Addr: loopback, Ports: []int{port}, WakeOn: wake.OnAny})
		before := h.waker.calls.Load()
		if res := get(fetchHeaders); res.StatusCode != http.StatusOK || h.waker.calls.Load() != before+1 {
			t.Fatalf("background request with wake_on any: %d", res.StatusCode)
		}
	})
	for _, state := range []State{Running, Starting} {
		t.Run(state.String(), func(t *testing.T) {
			h.table.Set(Route{ID: "sb1", State: state, Addr: loopback, Ports: []int{port}})
			if res := get(fetchHeaders); res.StatusCode != http.StatusOK {
				t.Fatalf("background request to a %s sandbox: %d", state, res.StatusCode)
			}
		})
	}
}
