package edge

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
	"github.com/sandboxd/sandboxd/wake"
)

// fakeServices is a Services made of a function field; it counts its calls.
type fakeServices struct {
	calls  atomic.Int32
	status func(id string, port, tail int) (ServiceInfo, error)
}

func (f *fakeServices) ServiceStatus(id string, port, tail int) (ServiceInfo, error) {
	f.calls.Add(1)
	return f.status(id, port, tail)
}

// Browser headers: what Chrome sends when a person opens a page, and when a page fetches.
var (
	openPage  = map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "text/html,*/*;q=0.8", "User-Agent": "Mozilla/5.0"}
	pageFetch = map[string]string{"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "*/*", "User-Agent": "Mozilla/5.0"}
)

func (h *harness) get(url string, headers map[string]string) (*http.Response, string) {
	h.t.Helper()
	res, body, err := h.tryGet(url, headers)
	if err != nil {
		h.t.Fatal(err)
	}
	return res, body
}

// tryGet is get for another goroutine than the test's, where Fatal would not end the test.
func (h *harness) tryGet(url string, headers map[string]string) (*http.Response, string, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := h.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body), nil
}

func TestWantsStartingPage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    bool
	}{
		{"tab", "GET", openPage, true},
		{"iframe", "GET", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, true},
		{"early Chrome frame", "GET", map[string]string{"Sec-Fetch-Mode": "nested-navigate"}, true},
		{"form post", "POST", openPage, false},
		{"fetch", "GET", pageFetch, false},
		{"websocket", "GET", map[string]string{"Sec-Fetch-Mode": "websocket", "Upgrade": "websocket", "Connection": "Upgrade"}, false},
		{"prerender", "GET", map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Purpose": "prefetch;prerender"}, false},
		{"old browser", "GET", map[string]string{"Accept": "text/html", "User-Agent": "Mozilla/5.0 (Windows NT 6.1)"}, true},
		{"program asking for HTML", "GET", map[string]string{"Accept": "text/html", "User-Agent": "curl/8.5"}, false},
		{"curl", "GET", map[string]string{"Accept": "*/*", "User-Agent": "curl/8.5"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://x/", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			if got := wantsStartingPage(r); got != tc.want {
				t.Fatalf("wantsStartingPage = %v, want %v", got, tc.want)
			}
		})
	}
}

// A navigation to a waking sandbox, or one being created, whose port does not answer gets
// the starting page at once, with the service's redacted log; a program is held, and so is
// a page's fetch to a sandbox being created (to a sleeping one the wake policy refuses it
// at once), and they get the app once the port answers, as does the next navigation.
func TestStartingPage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		state State
		held  []map[string]string
	}{
		{Asleep, []map[string]string{nil}},
		{Paused, []map[string]string{nil}},
		{Starting, []map[string]string{nil, pageFetch}},
	} {
		t.Run(tc.state.String(), func(t *testing.T) {
			t.Parallel()
			testStartingPage(t, tc.state, tc.held)
		})
	}
}

func testStartingPage(t *testing.T, state State, heldHeaders []map[string]string) {
	svc := &fakeServices{status: func(string, int, int) (ServiceInfo, error) {
		return ServiceInfo{Name: "web", Declared: true, Log: ".sandboxd/logs/web.log",
			Tail:    []byte("> vite --port 4000\nusing API_KEY=sk-test-abcdef <now>\n"),
			Secrets: []string{"sk-test-abcdef"}}, nil
	}}
	h := newHarness(t, func(s *Server) { s.Services, s.StartingAfter = svc, 20*time.Millisecond })
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the app") }))
	h.route("sb1", state, port)
	ready := make(chan struct{})
	h.waker.wake = func(ctx context.Context, _ string, port int) (netip.AddrPort, error) {
		select {
		case <-ready:
			return netip.AddrPortFrom(loopback, uint16(port)), nil
		case <-ctx.Done():
			return netip.AddrPort{}, ctx.Err()
		}
	}
	url := previewURL("sb1", port, "/")
	type result struct {
		code int
		body string
	}
	held := make(chan result, len(heldHeaders))
	for _, headers := range heldHeaders {
		go func() {
			res, body, err := h.tryGet(url, headers)
			if err != nil {
				t.Error(err)
				held <- result{}
				return
			}
			held <- result{res.StatusCode, body}
		}()
	}
	testutil.Eventually(t, 10*time.Second, "the held requests inside Wake", func() bool { return int(h.waker.calls.Load()) == len(heldHeaders) })

	res, body := h.get(url, openPage)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("X-Sandboxd-State") != "starting" ||
		res.Header.Get("Retry-After") != "1" || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("navigation: %d %v", res.StatusCode, res.Header)
	}
	for _, want := range []string{"The app is starting", "~/.sandboxd/logs/web.log", "&gt; vite --port 4000", "using API_KEY=[redacted] &lt;now&gt;", "location.reload()"} {
		if !strings.Contains(body, want) {
			t.Errorf("the starting page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "sk-test-abcdef") {
		t.Errorf("the starting page shows an env value:\n%s", body)
	}
	select {
	case r := <-held:
		t.Fatalf("a request that is not a navigation was answered while the port was closed: %d %q", r.code, r.body)
	default:
	}

	close(ready)
	for range heldHeaders {
		if r := <-held; r.code != http.StatusOK || r.body != "the app" {
			t.Errorf("held request: %d %q, want the app", r.code, r.body)
		}
	}
	h.route("sb1", Running, port) // started: the lifecycle tells the edge, and no wake is left to race the page
	if res, body := h.get(url, openPage); res.StatusCode != http.StatusOK || body != "the app" {
		t.Errorf("navigation once the port answers: %d %q", res.StatusCode, body)
	}
}

// A running sandbox whose port stays closed: a navigation is not told the app is starting
// when its service runs, and has for longer than WakeTimeout; it gets the 502, which names
// the service and its log, as does a program.
func TestPortClosedNamesService(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		name string
		info ServiceInfo
		want string
	}{
		{"declared", ServiceInfo{Name: "web", Declared: true, State: "running", StartedAt: now.Add(-time.Hour), Restarts: 3, LastExit: "code 1", Log: ".sandboxd/logs/web.log"},
			"is closed: service web declares it (web: running · up 60m · 3 restarts · last exit code 1); its log is ~/.sandboxd/logs/web.log in the sandbox"},
		{"the image's command", ServiceInfo{Name: "main", State: "running", StartedAt: now.Add(-time.Hour), Log: ".sandboxd/logs/main.log"},
			"is closed: no service declares it; the image's command runs as service main (main: running · up 60m); its log is ~/.sandboxd/logs/main.log in the sandbox"},
		{"nothing", ServiceInfo{}, "is closed: no service of sandbox sb1 declares it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			svc := &fakeServices{status: func(string, int, int) (ServiceInfo, error) { return tc.info, nil }}
			h := newHarness(t, func(s *Server) { s.Services, s.StartingAfter = svc, 10*time.Millisecond })
			port := closedPort(t)
			h.route("sb1", Running, port)
			w := wake.New(runningStarter{})
			w.ProbeWindow = 30 * time.Millisecond
			t.Cleanup(func() { w.Close() })
			h.edge.waker = w

			res, body := h.get(previewURL("sb1", port, "/"), nil)
			var e struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal([]byte(body), &e)
			if res.StatusCode != http.StatusBadGateway || e.Error.Code != "port_closed" ||
				e.Error.Message != "port "+strconv.Itoa(port)+" "+tc.want {
				t.Fatalf("program: %d %s\nwant message %q", res.StatusCode, body, tc.want)
			}
			res, body = h.get(previewURL("sb1", port, "/"), openPage)
			if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Port closed") ||
				!strings.Contains(body, strings.ReplaceAll(tc.want, "'", "&#39;")) {
				t.Fatalf("navigation: %d\n%s", res.StatusCode, body)
			}
		})
	}
}

// A service that has been starting for long (an npm install of minutes): a navigation
// still gets the starting page; a program is held until WakeTimeout after it came, then
// gets the 502 naming the service.
func TestStartingForLong(t *testing.T) {
	t.Parallel()
	svc := &fakeServices{status: func(string, int, int) (ServiceInfo, error) {
		return ServiceInfo{Name: "web", Declared: true, State: "starting", StartedAt: time.Now().Add(-5 * time.Minute), Log: ".sandboxd/logs/web.log"}, nil
	}}
	h := newHarness(t, func(s *Server) {
		s.Services, s.StartingAfter, s.WakeTimeout = svc, 10*time.Millisecond, 300*time.Millisecond
	})
	port := closedPort(t)
	h.route("sb1", Running, port)
	w := wake.New(runningStarter{})
	w.ProbeWindow = 30 * time.Millisecond
	t.Cleanup(func() { w.Close() })
	h.edge.waker = w

	res, body := h.get(previewURL("sb1", port, "/"), openPage)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "Service web of sandbox sb1 started 5m ago and does not listen on port") {
		t.Fatalf("navigation: %d\n%s", res.StatusCode, body)
	}
	res, body = h.get(previewURL("sb1", port, "/"), nil)
	want := "is closed: service web declares it (web: starting · up 5m); its log is ~/.sandboxd/logs/web.log in the sandbox"
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, want) {
		t.Fatalf("program: %d %s\nwant %q", res.StatusCode, body, want)
	}
	if n := svc.calls.Load(); n < 1 {
		t.Fatal("the program's hold never asked whether the service starts")
	}
}

// A program's request to a running sandbox whose service is still starting is held past
// the waker's probe window, until the port opens.
func TestHeldWhileServiceStarts(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	opened := make(chan struct{})
	svc := &fakeServices{}
	svc.status = func(string, int, int) (ServiceInfo, error) {
		if svc.calls.Load() == 1 { // the probe window has passed once: now the app listens
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				t.Error(err)
			} else {
				app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the app") }))
				app.Listener.Close()
				app.Listener = ln
				app.Start()
				t.Cleanup(app.Close)
			}
			close(opened)
		}
		return ServiceInfo{Name: "web", Declared: true, State: "starting", StartedAt: time.Now()}, nil
	}
	h := newHarness(t, func(s *Server) { s.Services = svc })
	h.route("sb1", Running, port)
	w := wake.New(runningStarter{})
	w.ProbeWindow = 30 * time.Millisecond
	t.Cleanup(func() { w.Close() })
	h.edge.waker = w

	res, body := h.get(previewURL("sb1", port, "/"), nil)
	if res.StatusCode != http.StatusOK || body != "the app" {
		t.Fatalf("%d %q, want the app", res.StatusCode, body)
	}
	select {
	case <-opened:
	default:
		t.Fatal("answered without the probe window passing")
	}
}

// A private preview shows a stranger no starting page (and so no log): the access check
// comes first, and nothing is read or woken.
func TestStartingPageNeedsAccess(t *testing.T) {
	t.Parallel()
	svc := &fakeServices{status: func(string, int, int) (ServiceInfo, error) {
		return ServiceInfo{Name: "web", Log: ".sandboxd/logs/web.log", Tail: []byte("private log\n")}, nil
	}}
	h := newHarness(t, func(s *Server) { s.Services, s.StartingAfter = svc, 10*time.Millisecond })
	h.waker.wake = func(ctx context.Context, _ string, _ int) (netip.AddrPort, error) {
		<-ctx.Done()
		return netip.AddrPort{}, ctx.Err()
	}
	h.private("sb1", Asleep, newKey(t), 3000)
	res, body := h.get(previewURL("sb1", 3000, "/"), openPage)
	if res.StatusCode != http.StatusUnauthorized || strings.Contains(body, "private log") {
		t.Fatalf("stranger: %d\n%s", res.StatusCode, body)
	}
	if n, m := h.waker.calls.Load(), svc.calls.Load(); n != 0 || m != 0 {
		t.Fatalf("a stranger's navigation woke the sandbox %d times and read its service %d times", n, m)
	}
}

// A program's request to a closed port whose only claim is the image's command, started
// lately, gets its 502 after the probe window: that command may serve another port or
// none, and holding every such request for the wake timeout made a closed port's 502 take
// a minute.
func TestClosedPortOfTheImageCommand(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	svc := &fakeServices{status: func(string, int, int) (ServiceInfo, error) {
		return ServiceInfo{Name: "main", State: "running", StartedAt: time.Now()}, nil
	}}
	h := newHarness(t, func(s *Server) { s.Services, s.WakeTimeout = svc, time.Hour })
	h.route("sb1", Running, port)
	w := wake.New(runningStarter{})
	w.ProbeWindow = 30 * time.Millisecond
	t.Cleanup(func() { w.Close() })
	h.edge.waker = w

	res, body := h.get(previewURL("sb1", port, "/"), nil)
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "is closed") {
		t.Fatalf("%d %s, want the 502 of a closed port", res.StatusCode, body)
	}
}

// The starting page does not give up the wake it stands for: a start still waiting for a
// start slot when the page is served goes on waiting (wake abandons a queued start once its
// last caller leaves, and the page's reload would only rejoin the back of the queue), and
// the reload finds the app.
func TestStartingPageKeepsTheStartQueued(t *testing.T) {
	t.Parallel()
	svc := &fakeServices{status: func(string, int, int) (ServiceInfo, error) {
		return ServiceInfo{Name: "web", Declared: true}, nil
	}}
	h := newHarness(t, func(s *Server) { s.Services, s.StartingAfter = svc, 20*time.Millisecond })
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the app") }))
	h.route("sb1", Asleep, port)
	slot := make(chan struct{})
	calls := make(chan context.Context, 4)
	started := make(chan struct{})
	var once sync.Once
	h.waker.wake = func(ctx context.Context, _ string, port int) (netip.AddrPort, error) {
		calls <- ctx
		select {
		case <-slot: // a start slot freed, the sandbox started
			once.Do(func() {
				h.route("sb1", Running, port) // as the lifecycle tells the edge
				close(started)
			})
			return netip.AddrPortFrom(loopback, uint16(port)), nil
		case <-ctx.Done():
			return netip.AddrPort{}, ctx.Err()
		}
	}
	t.Cleanup(func() {
		select {
		case <-slot:
		default:
			close(slot) // a failing test leaves no wake behind
		}
	})
	url := previewURL("sb1", port, "/")
	if res, _ := h.get(url, openPage); res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("X-Sandboxd-State") != "starting" {
		t.Fatalf("navigation: %d %v, want the starting page", res.StatusCode, res.Header)
	}
	wakeCtx := <-calls
	if err := wakeCtx.Err(); err != nil {
		t.Fatalf("the wake ended with the starting page (%v): a queued start would be abandoned", err)
	}
	close(slot)
	select {
	case <-started: // the detached wake went on and started the sandbox
	case <-time.After(10 * time.Second):
		t.Fatal("the wake the starting page left behind never finished")
	}
	if res, body := h.get(url, openPage); res.StatusCode != http.StatusOK || body != "the app" {
		t.Fatalf("the reload: %d %q, want the app", res.StatusCode, body)
	}
}

// A program's request to a port whose service cannot start (its last start failed before
// its process ran: a missing command or cwd, which only a change mends) gets the 502 that
// says why after the probe window, not after WakeTimeout: holding it a minute for an
// answer that is certain helped nobody. A person's navigation still gets the starting
// page, which reloads itself and shows the app once someone fixes it.
func TestServiceThatCannotStartIsNotHeld(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	svc := &fakeServices{status: func(string, int, int) (ServiceInfo, error) {
		return ServiceInfo{Name: "web", Declared: true, State: "backoff", StartedAt: time.Now(), Restarts: 11,
			Error: `exec "x": not found`, Log: ".sandboxd/logs/web.log"}, nil
	}}
	h := newHarness(t, func(s *Server) { s.Services, s.StartingAfter, s.WakeTimeout = svc, 10*time.Millisecond, 5*time.Minute })
	h.route("sb1", Running, port)
	w := wake.New(runningStarter{})
	w.ProbeWindow = 30 * time.Millisecond
	t.Cleanup(func() { w.Close() })
	h.edge.waker = w

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a bound, far below WakeTimeout
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, previewURL("sb1", port, "/"), nil)
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("the program's request was held: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `exec \"x\": not found`) {
		t.Fatalf("program: %d %s, want the 502 naming the failed start", res.StatusCode, body)
	}
	if res, body := h.get(previewURL("sb1", port, "/"), openPage); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "The app is starting") {
		t.Fatalf("navigation: %d, want the starting page\n%s", res.StatusCode, body)
	}
}
