package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/wake"
)

func TestErrorAnswers(t *testing.T) {
	wakeFails := func(err error) func(*harness, int) string {
		return func(h *harness, port int) string {
			h.route("sb1", Asleep, port)
			h.waker.wake = func(context.Context, string, int) (netip.AddrPort, error) { return netip.AddrPort{}, err }
			return previewHost("sb1", port)
		}
	}
	tests := []struct {
		name       string
		method     string
		setup      func(h *harness, port int) string // returns the Host to request
		status     int
		code       string
		message    string // a part of it
		retryAfter string
	}{
		{
			name:   "unknown host",
			setup:  func(*harness, int) string { return "example.com" },
			status: 404, code: "unknown_host",
		},
		{
			name:   "preview host in the wrong shape",
			setup:  func(*harness, int) string { return "s-demo.preview." + testDomain },
			status: 404, code: "unknown_host",
			message: "no sandbox is served at this host; a preview host is s-<id>-<port>.preview." + testDomain +
				", like s-demo-3000.preview." + testDomain,
		},
		{
			name:   "unknown sandbox",
			setup:  func(_ *harness, port int) string { return previewHost("nope", port) },
			status: 404, code: "not_found", message: "sandbox nope not found",
		},
		{
			name: "undeclared port",
			setup: func(h *harness, port int) string {
				h.route("sb1", Running, port)
				return previewHost("sb1", port+1)
			},
			status: 404, code: "port_not_declared",
		},
		{
			name: "broken sandbox",
			setup: func(h *harness, port int) string {
				h.table.Set(Route{ID: "sb1", State: Broken, Ports: []int{port}, Message: "image <missing>"})
				return previewHost("sb1", port)
			},
			status: 503, code: "sandbox_error", message: "image <missing>",
		},
		{
			name:   "port closed after wake",
			setup:  wakeFails(fmt.Errorf("wrapped: %w", &wake.PortClosedError{Port: 4242})),
			status: 502, code: "port_closed", message: "port 4242 is closed",
		},
		{
			name:   "wake timeout",
			setup:  wakeFails(fmt.Errorf("sandbox sb1: %w", wake.ErrTimeout)),
			status: 504, code: "wake_timeout",
		},
		{
			name:   "caller deadline",
			setup:  wakeFails(context.DeadlineExceeded),
			status: 504, code: "wake_timeout",
		},
		{
			name:   "no capacity",
			setup:  wakeFails(&wake.CapacityError{Reason: "memory", RetryAfter: 7 * time.Second}),
			status: 503, code: "no_capacity", retryAfter: "7",
		},
		{
			name:   "no capacity rounds Retry-After up",
			setup:  wakeFails(&wake.CapacityError{Reason: "memory", RetryAfter: 1500 * time.Millisecond}),
			status: 503, code: "no_capacity", retryAfter: "2",
		},
		{
			name:   "tenant at its running limit",
			setup:  wakeFails(&wake.StartError{ID: "sb1", Err: codeErr("limit_exceeded")}),
			status: 429, code: "limit_exceeded", message: "cannot start now: its owner already runs as many sandboxes as allowed",
		},
		{
			name:   "starter failed",
			setup:  wakeFails(errors.New("docker: no such image")),
			status: 503, code: "sandbox_error", message: "failed to start",
		},
		{
			name:   "dial refused",
			method: http.MethodPost, // with a body: not retried through wake
			setup: func(h *harness, port int) string {
				h.route("sb1", Running, port)
				h.table.lookup("sb1").open[0].Store(true) // known open, then closed
				return previewHost("sb1", port)
			},
			status: 502, code: "port_closed", message: "is closed",
		},
	}
	for _, tc := range tests {
		for _, html := range []bool{false, true} {
			name := tc.name + map[bool]string{false: "/json", true: "/html"}[html]
			t.Run(name, func(t *testing.T) {
				h := newHarness(t)
				port := closedPort(t)
				host := tc.setup(h, port)

				method := tc.method
				if method == "" {
					method = http.MethodGet
				}
				req, _ := http.NewRequest(method, "http://"+host+"/x", strings.NewReader("body"))
				if method == http.MethodGet {
					req.Body = http.NoBody
					req.ContentLength = 0
				}
				if html {
					req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
				}
				res, err := h.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()

				if res.StatusCode != tc.status {
					t.Errorf("status %d, want %d", res.StatusCode, tc.status)
				}
				if got := res.Header.Get("Retry-After"); got != tc.retryAfter {
					t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
				}
				if html {
					if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
						t.Errorf("Content-Type %q", ct)
					}
					s := string(body)
					if !strings.Contains(s, "<code>"+fmt.Sprint(tc.status)+" "+tc.code+"</code>") {
						t.Errorf("page lacks its status and code:\n%s", s)
					}
					if tc.message != "" && !strings.Contains(s, htmlEscape(tc.message)) {
						t.Errorf("page lacks %q:\n%s", tc.message, s)
					}
					if strings.Contains(s, "<missing>") || strings.Contains(s, "http-equiv") {
						t.Errorf("page has unescaped text or a meta refresh:\n%s", s)
					}
					if hasScript := strings.Contains(s, "<script>"); hasScript != (tc.code == "no_capacity") {
						t.Errorf("script on page: %v", hasScript)
					}
					return
				}
				if ct := res.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				var got struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("%v: %s", err, body)
				}
				if got.Error.Code != tc.code || !strings.Contains(got.Error.Message, tc.message) {
					t.Errorf("got %+v, want code %q, message with %q", got.Error, tc.code, tc.message)
				}
			})
		}
	}
}

func htmlEscape(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(s)
}

func TestCapacityPageRetriesOnlyGET(t *testing.T) {
	a := answer{status: 503, code: "no_capacity", message: "busy", retryAfter: 5 * time.Second}
	if !strings.Contains(page(a, true), "5000") {
		t.Error("GET capacity page does not retry after Retry-After")
	}
	if strings.Contains(page(a, false), "<script>") {
		t.Error("non-GET capacity page would reload (and resubmit)")
	}
}

func TestRunningPortClosedWithRealWaker(t *testing.T) {
	h := newHarness(t)
	port := closedPort(t)
	h.route("sb1", Running, port)
	w := wake.New(runningStarter{})
	w.ProbeWindow = 50 * time.Millisecond
	defer w.Close()
	h.edge.waker = w

	res, err := h.client.Get(previewURL("sb1", port, "/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 502 || !strings.Contains(string(body), fmt.Sprintf(`"port %d is closed"`, port)) {
		t.Fatalf("got %d %s", res.StatusCode, body)
	}
}

// runningStarter says every sandbox runs on loopback.
type runningStarter struct{}

func (runningStarter) Running(string) (netip.Addr, bool) { return loopback, true }
func (runningStarter) Start(context.Context, string) (netip.Addr, error) {
	return loopback, nil
}
func (runningStarter) Paused(string) bool { return false }

func TestClientGoneNoAnswerNoLog(t *testing.T) {
	t.Run("while held", func(t *testing.T) {
		h := newHarness(t)
		h.route("sb1", Asleep, 3000)
		ctx, cancel := context.WithCancel(context.Background())
		h.waker.wake = func(ctx context.Context, _ string, _ int) (netip.AddrPort, error) {
			cancel() // the client leaves while its request is held
			<-ctx.Done()
			return netip.AddrPort{}, ctx.Err()
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, previewURL("sb1", 3000, "/"), nil)
		h.edge.ServeHTTP(rec, req)
		if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
			t.Errorf("wrote %v %q to a client that left", rec.Header(), rec.Body)
		}
		if n := h.logs.count(); n != 0 {
			t.Errorf("%d log records", n)
		}
	})
	t.Run("while proxied", func(t *testing.T) {
		h := newHarness(t)
		inApp := make(chan struct{})
		_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(inApp)
			<-r.Context().Done()
		}))
		h.route("sb1", Running, port)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-inApp; cancel() }()
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, previewURL("sb1", port, "/"), nil)
		h.edge.ServeHTTP(rec, req)
		if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
			t.Errorf("wrote %v %q to a client that left", rec.Header(), rec.Body)
		}
		if n := h.logs.count(); n != 0 {
			t.Errorf("%d log records", n)
		}
	})
}

// codeErr is an error with a code, as lifecycle's are (the edge imports no lifecycle).
type codeErr string

func (c codeErr) Error() string     { return "tenant over its limit: " + string(c) }
func (c codeErr) ErrorCode() string { return string(c) }
