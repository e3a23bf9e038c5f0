package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// apiCall sends one request to the API over d and answers the status and the decoded
// error (when there is one) or body.
func apiCall(t *testing.T, d Deps, method, target, body string) (int, string, apiErrorBody) {
	t.Helper()
	return serverCall(t, New(d, nil), method, target, body)
}

func serverCall(t *testing.T, s *Server, method, target, body string) (int, string, apiErrorBody) {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiErrorBody
	json.Unmarshal(b, &e)
	return resp.StatusCode, string(b), e
}

type apiErrorBody struct {
	Error struct{ Code, Message string } `json:"error"`
}

// A ?status= that is no state answers 400 and lists the states there are.
func TestListStatusFilter(t *testing.T) {
	var asked []string
	d := Deps{Sandboxes: &fakeSandboxes{ListFn: func(ctx context.Context, o store.ListOptions) ([]store.Sandbox, error) {
		asked = append(asked, o.Status)
		return nil, nil
	}}}
	for _, path := range []string{"/v1/sandboxes", "/sandboxes"} {
		code, _, e := apiCall(t, d, "GET", path+"?status=bogus", "")
		want := `status "bogus" is not a sandbox state: use creating, running, paused, stopping, stopped or error`
		if code != 400 || e.Error.Code != "invalid_request" || e.Error.Message != want {
			t.Fatalf("%s?status=bogus = %d %+v, want 400 %q", path, code, e, want)
		}
	}
	if len(asked) != 0 {
		t.Fatalf("a bad filter reached the list: %q", asked)
	}
	for _, st := range sandboxStates {
		if code, body, _ := apiCall(t, d, "GET", "/v1/sandboxes?status="+st, ""); code != 200 {
			t.Fatalf("?status=%s = %d %s", st, code, body)
		}
	}
	if strings.Join(asked, ",") != "creating,running,paused,stopping,stopped,error" {
		t.Fatalf("filters asked: %q", asked)
	}
}

// keepaliveFake is a sandbox "a" that starts stopped: Wake starts it, Keepalive records
// the time asked for. calls lists what reached the manager, in order.
type keepaliveFake struct {
	mu     sync.Mutex
	status string
	until  time.Time
	calls  []string
}

func (f *keepaliveFake) deps() Deps {
	return Deps{
		Sandboxes: &fakeSandboxes{
			GetFn: func(ctx context.Context, id string) (store.Sandbox, error) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.calls = append(f.calls, "get")
				return store.Sandbox{ID: id, Status: f.status}, nil
			},
			KeepaliveFn: func(ctx context.Context, id string, until time.Time) (store.Sandbox, error) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.calls = append(f.calls, "keepalive")
				f.until = until
				return store.Sandbox{ID: id, Status: f.status, KeepaliveUntil: until}, nil
			},
		},
		Waker: &fakeWaker{WakeFn: func(ctx context.Context, id string, port int) (netip.AddrPort, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls = append(f.calls, "wake")
			f.status = store.StatusRunning
			return netip.AddrPort{}, nil
		}},
	}
}

// Keepalive on a stopped sandbox wakes it, like exec, and answers it running with the
// keepalive in force; it used to answer 200 and leave it asleep (issue 10).
func TestKeepaliveWakesStoppedSandbox(t *testing.T) {
	now := time.Date(2030, 1, 2, 15, 0, 0, 0, time.UTC)
	for _, path := range []string{"/v1/sandboxes/a/keepalive", "/sandbox/a/keepalive"} {
		t.Run(path, func(t *testing.T) {
			f := &keepaliveFake{status: store.StatusStopped}
			s := New(f.deps(), nil)
			s.Now = func() time.Time { return now }
			code, body, _ := serverCall(t, s, "POST", path, `{"seconds":60}`)
			var got struct {
				Status string    `json:"status"`
				Until  time.Time `json:"keepalive_until"`
				ID     string    `json:"id"`
			}
			json.Unmarshal([]byte(body), &got)
			if code != 200 || got.Status != "running" || got.ID != "a" || !got.Until.Equal(now.Add(time.Minute)) {
				t.Fatalf("answer %d %s", code, body)
			}
			if strings.Join(f.calls, ",") != "get,wake,keepalive" {
				t.Fatalf("calls %v, want get, wake, then keepalive", f.calls)
			}
		})
	}
}

// What a keepalive body asks for, and the ones refused with the field named: nothing
// reaches the manager or the waker then.
func TestKeepaliveBody(t *testing.T) {
	now := time.Date(2030, 1, 2, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name, body string
		until      time.Time // when 200
		err        string    // when 400
	}{
		{"no body", ``, time.Time{}, ""},
		{"empty object", `{}`, time.Time{}, ""},
		{"until", `{"until":"2030-01-02T16:00:00Z"}`, now.Add(time.Hour), ""},
		{"duration", `{"duration":"90m"}`, now.Add(90 * time.Minute), ""},
		{"seconds", `{"seconds":3600}`, now.Add(time.Hour), ""},
		{"until wins", `{"until":"2030-01-02T16:00:00Z","seconds":60}`, now.Add(time.Hour), ""},
		{"capped at 24h", `{"seconds":1e6}`, now.Add(24 * time.Hour), ""},
		{"until capped", `{"until":"2031-01-01T00:00:00Z"}`, now.Add(24 * time.Hour), ""},
		{"until passed", `{"until":"2030-01-02T14:59:59Z"}`, time.Time{},
			"until must be a time after now; got 2030-01-02T14:59:59Z, which has passed"},
		{"until now", `{"until":"2030-01-02T15:00:00Z"}`, time.Time{},
			"until must be a time after now; got 2030-01-02T15:00:00Z, which has passed"},
		{"until long ago", `{"until":"0001-01-01T00:00:00Z"}`, time.Time{},
			"until must be a time after now; got 0001-01-01T00:00:00Z, which has passed"},
		{"seconds overflow", `{"seconds":1e300}`, time.Time{},
			"seconds must be a positive number of seconds, like 3600 (at most 86400 are kept); got 1e+300"},
		{"seconds negative", `{"seconds":-5}`, time.Time{},
			"seconds must be a positive number of seconds, like 3600 (at most 86400 are kept); got -5"},
		{"duration negative", `{"duration":"-5m"}`, time.Time{}, `duration must be positive, like "1h"; got -5m0s`},
		{"duration overflow", `{"duration":1e300}`, time.Time{},
			`duration must be a duration like "30s", "15m" or "7d", or a number of seconds; got 1e300, which is out of range`},
		{"bad even when overridden", `{"until":"2030-01-02T16:00:00Z","seconds":-1}`, time.Time{},
			"seconds must be a positive number of seconds, like 3600 (at most 86400 are kept); got -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &keepaliveFake{status: store.StatusRunning}
			s := New(f.deps(), nil)
			s.Now = func() time.Time { return now }
			code, body, e := serverCall(t, s, "POST", "/v1/sandboxes/a/keepalive", c.body)
			if c.err != "" {
				if code != 400 || e.Error.Code != "invalid_request" || e.Error.Message != c.err {
					t.Fatalf("answer %d %s, want 400 %q", code, body, c.err)
				}
				if len(f.calls) > 0 {
					t.Fatalf("a refused keepalive reached %v", f.calls)
				}
				return
			}
			if code != 200 || !f.until.Equal(c.until) {
				t.Fatalf("answer %d %s; keepalive until %v, want %v", code, body, f.until, c.until)
			}
		})
	}
}
