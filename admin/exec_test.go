package admin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sandboxd/sandboxd/admin/apikey"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// execDeps is an API whose sandboxes all run and whose ExecStream runs script.
func execDeps(script func(stdout, stderr io.Writer) (lifecycle.ExecStatus, error)) Deps {
	return Deps{
		Sandboxes: &fakeSandboxes{GetFn: running},
		Execs: &fakeExecs{ExecStreamFn: func(ctx context.Context, id string, req lifecycle.ExecRequest, stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
			return script(stdout, stderr)
		}},
		Waker: &fakeWaker{WakeFn: awake},
	}
}

func postExec(t *testing.T, d Deps, target, accept string) *http.Response {
	t.Helper()
	srv := httptest.NewServer(New(d, nil).Handler())
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("POST", srv.URL+target, strings.NewReader(`{"cmd":["x"]}`))
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestExecFormat(t *testing.T) {
	cases := []struct {
		name, query, accept, want string
		bad                       bool
	}{
		{"default", "", "", formatBuffered, false},
		{"any", "", "*/*", formatBuffered, false},
		{"sse", "", "text/event-stream", formatSSE, false},
		{"ndjson", "", "application/x-ndjson", formatNDJSON, false},
		{"first named wins", "", "application/json, text/event-stream", formatBuffered, false},
		{"params", "", "text/html;q=0.9, text/event-stream;q=0.5", formatSSE, false},
		{"query wins", "format=ndjson", "text/event-stream", formatNDJSON, false},
		{"query json", "format=json", "text/event-stream", formatSSE, false},
		{"unknown query", "format=xml", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/sandboxes/a/exec?"+c.query, nil)
			r.Header.Set("Accept", c.accept)
			got, err := execFormat(r)
			if (err != nil) != c.bad || got != c.want {
				t.Fatalf("execFormat = %q, %v; want %q (error %v)", got, err, c.want, c.bad)
			}
		})
	}
}

func TestExecStreamSSEEvents(t *testing.T) {
	d := execDeps(func(stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
		for _, w := range []struct {
			w io.Writer
			s string
		}{
			{stdout, "hel"}, {stdout, "lo <b>\n"}, {stdout, "caf\xc3"}, {stdout, "\xa9\n"},
			{stderr, "oops\n"}, {stdout, "\xff\xfe"}, {stdout, "end\xe2\x82"},
		} {
			if _, err := io.WriteString(w.w, w.s); err != nil {
				return lifecycle.ExecStatus{}, err
			}
		}
		return lifecycle.ExecStatus{ExitCode: 2}, nil
	})
	resp := postExec(t, d, "/v1/sandboxes/a/exec", "text/event-stream")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("answer %d %v", resp.StatusCode, resp.Header)
	}
	b, _ := io.ReadAll(resp.Body)
	var got []string
	for _, block := range strings.Split(strings.TrimSpace(string(b)), "\n\n") {
		got = append(got, block)
	}
	want := []string{
		"event: stdout\ndata: {\"data\":\"hel\"}",
		"event: stdout\ndata: {\"data\":\"lo <b>\\n\"}",
		"event: stdout\ndata: {\"data\":\"caf\"}",
		"event: stdout\ndata: {\"data\":\"é\\n\"}", // the split character, whole
		"event: stderr\ndata: {\"data\":\"oops\\n\"}",
		"event: stdout\ndata: {\"data_base64\":\"//4=\"}",
		"event: stdout\ndata: {\"data\":\"end\"}",
		"event: stdout\ndata: {\"data_base64\":\"4oI=\"}", // a cut-off character at the end
	}
	if len(got) != len(want)+1 {
		t.Fatalf("events:\n%s", b)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %q, want %q", i, got[i], want[i])
		}
	}
	if exit := got[len(want)]; !strings.HasPrefix(exit, "event: exit\ndata: {\"exit_code\":2,\"timed_out\":false,\"duration_ms\":") {
		t.Errorf("last event %q", exit)
	}
}

func TestExecStreamNDJSONLines(t *testing.T) {
	d := execDeps(func(stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
		io.WriteString(stdout, "a\n")
		io.WriteString(stderr, "b\n")
		return lifecycle.ExecStatus{ExitCode: 137, TimedOut: true}, nil
	})
	resp := postExec(t, d, "/sandbox/a/exec?format=ndjson", "")
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 3 || lines[0] != `{"stream":"stdout","data":"a\n"}` || lines[1] != `{"stream":"stderr","data":"b\n"}` ||
		!strings.HasPrefix(lines[2], `{"exit_code":137,"timed_out":true,"duration_ms":`) {
		t.Fatalf("lines: %q", lines)
	}
}

func TestExecStreamErrors(t *testing.T) {
	conflict := &lifecycle.Error{Code: lifecycle.CodeConflict, Message: "sandbox a is stopping, not running"}
	t.Run("before any output", func(t *testing.T) {
		d := execDeps(func(stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
			return lifecycle.ExecStatus{}, conflict
		})
		resp := postExec(t, d, "/v1/sandboxes/a/exec", "text/event-stream")
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusConflict || resp.Header.Get("Content-Type") != "application/json" ||
			!strings.Contains(string(b), `"code":"conflict"`) {
			t.Fatalf("answer %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	})
	t.Run("midway", func(t *testing.T) {
		d := execDeps(func(stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
			io.WriteString(stdout, "x")
			return lifecycle.ExecStatus{}, errors.New("engine fell over")
		})
		resp := postExec(t, d, "/v1/sandboxes/a/exec", "text/event-stream")
		b, _ := io.ReadAll(resp.Body)
		want := "event: stdout\ndata: {\"data\":\"x\"}\n\nevent: error\ndata: {\"code\":\"internal\",\"message\":\"internal error\"}\n\n"
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("answer %d %q", resp.StatusCode, b)
		}
	})
}

func TestIncompleteTail(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 0}, {"é", 0}, {"\xc3", 1}, {"a\xe2\x82", 2}, {"a\xf0\x9f\x98", 3},
		{"😀", 0}, {"\xff", 0}, {"\xa9", 0}, {"a\x82\x82\x82", 0},
	}
	for _, c := range cases {
		if got := incompleteTail([]byte(c.in)); got != c.want {
			t.Errorf("incompleteTail(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// A page of another origin cannot open a shell (cross-site WebSocket hijacking), with or
// without a token; programs and same-origin pages reach the terminal (426 here: no upgrade).
func TestTerminalOrigin(t *testing.T) {
	keys := apikey.New(nil)
	keys.SetEnv([]apikey.Token{{Name: "ci", Secret: "s3cret"}})
	s := New(Deps{Keys: keys}, nil)
	h := s.Handler()
	cases := []struct {
		name, host, origin string
		want               int
	}{
		{"no origin (curl, Go)", "127.0.0.1:9090", "", http.StatusUpgradeRequired},
		{"same origin", "127.0.0.1:9090", "http://127.0.0.1:9090", http.StatusUpgradeRequired},
		{"same origin, other case", "Admin.Example:9090", "https://admin.example:9090", http.StatusUpgradeRequired},
		{"cross origin", "127.0.0.1:9090", "http://evil.example", http.StatusForbidden},
		{"other port", "127.0.0.1:9090", "http://127.0.0.1:8080", http.StatusForbidden},
		{"null origin", "127.0.0.1:9090", "null", http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://"+c.host+"/v1/sandboxes/a/terminal", nil)
			r.Host = c.host
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			r.Header.Set("Authorization", "Bearer s3cret")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
		})
	}
}

// lockedRecorder is a flushable ResponseWriter whose body may be read while another
// goroutine writes.
type lockedRecorder struct {
	mu     sync.Mutex
	header http.Header
	code   int
	buf    strings.Builder
}

func (w *lockedRecorder) Header() http.Header { return w.header }
func (w *lockedRecorder) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.code = code
}
func (w *lockedRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}
func (w *lockedRecorder) Flush() {}
func (w *lockedRecorder) state() (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.code, w.buf.String()
}

// A quiet command's stream gets its headers and a ": ping" comment every heartbeatEvery,
// and nothing before the first one.
func TestExecStreamHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		d := execDeps(func(stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
			<-release
			io.WriteString(stdout, "late\n")
			return lifecycle.ExecStatus{}, nil
		})
		s := New(d, nil)
		w := &lockedRecorder{header: http.Header{}}
		r := httptest.NewRequest("POST", "/v1/sandboxes/a/exec", nil)
		done := make(chan error, 1)
		go func() { done <- s.execStream(w, r, "a", lifecycle.ExecRequest{}, formatSSE) }()

		time.Sleep(heartbeatEvery - time.Second)
		synctest.Wait()
		if code, body := w.state(); code != 0 || body != "" {
			t.Fatalf("before the first heartbeat: %d %q", code, body)
		}
		time.Sleep(2 * heartbeatEvery)
		synctest.Wait()
		if code, body := w.state(); code != 200 || body != ": ping\n\n: ping\n\n" {
			t.Fatalf("after two heartbeats: %d %q", code, body)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, body := w.state(); !strings.Contains(body, ": ping\n\nevent: stdout\ndata: {\"data\":\"late\\n\"}\n\nevent: exit\n") {
			t.Fatalf("stream: %q", body)
		}
	})
}

// The heartbeat follows Server.Heartbeat, under the synctest clock.
func TestExecStreamHeartbeatInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := New(execDeps(func(stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
			<-release
			return lifecycle.ExecStatus{}, nil
		}), nil)
		s.Heartbeat = 2 * time.Second
		w := &lockedRecorder{header: http.Header{}}
		r := httptest.NewRequest("POST", "/v1/sandboxes/a/exec", nil)
		done := make(chan error, 1)
		go func() { done <- s.execStream(w, r, "a", lifecycle.ExecRequest{}, formatSSE) }()
		time.Sleep(7 * time.Second)
		synctest.Wait()
		if _, body := w.state(); body != strings.Repeat(": ping\n\n", 3) {
			t.Fatalf("after 7s of 2s heartbeats: %q", body)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// duration_ms is measured on the Server's clock, buffered or streamed.
func TestExecDurationUsesClock(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2030, 1, 2, 15, 0, 0, 0, time.UTC)
	advance := func() { mu.Lock(); clock = clock.Add(1500 * time.Millisecond); mu.Unlock() }
	d := execDeps(func(stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
		advance()
		return lifecycle.ExecStatus{}, nil
	})
	d.Execs.(*fakeExecs).ExecFn = func(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.ExecResult, error) {
		advance()
		return lifecycle.ExecResult{}, nil
	}
	s := New(d, nil)
	s.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	for _, format := range []string{"json", "ndjson"} {
		code, body, _ := serverCall(t, s, "POST", "/v1/sandboxes/a/exec?format="+format, `{"cmd":["x"]}`)
		if code != 200 || !strings.Contains(body, `"duration_ms":1500`) {
			t.Fatalf("%s: %d %s", format, code, body)
		}
	}
}

// An exec that finds the container died since the wake (lifecycle.ErrNotRunning) wakes the
// sandbox again and runs once more, buffered and streaming alike: the caller sees its
// output, not the death (issue 11). Any other error answers at once.
func TestExecAfterDeathWakesAgain(t *testing.T) {
	died := &lifecycle.Error{Code: lifecycle.CodeConflict, Message: "sandbox s stopped", Err: lifecycle.ErrNotRunning}
	for _, accept := range []string{"", "text/event-stream"} {
		t.Run("accept "+accept, func(t *testing.T) {
			var wakes, runs int
			d := Deps{
				Sandboxes: &fakeSandboxes{GetFn: running},
				Waker: &fakeWaker{WakeFn: func(ctx context.Context, id string, port int) (netip.AddrPort, error) {
					wakes++
					return awake(ctx, id, port)
				}},
				Execs: &fakeExecs{ExecStreamFn: func(ctx context.Context, id string, req lifecycle.ExecRequest, stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
					if runs++; runs == 1 {
						return lifecycle.ExecStatus{}, died
					}
					io.WriteString(stdout, "ran")
					return lifecycle.ExecStatus{}, nil
				}},
			}
			d.Execs.(*fakeExecs).ExecFn = func(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.ExecResult, error) {
				var out strings.Builder
				st, err := d.Execs.(*fakeExecs).ExecStreamFn(ctx, id, req, &out, io.Discard)
				return lifecycle.ExecResult{ExecStatus: st, Stdout: []byte(out.String())}, err
			}
			resp := postExec(t, d, "/v1/sandboxes/s/exec", accept)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(body), "ran") || wakes != 2 || runs != 2 {
				t.Fatalf("%d %s after %d wakes and %d runs; want 200 with the output, 2 and 2", resp.StatusCode, body, wakes, runs)
			}
		})
	}
	t.Run("other errors answer at once", func(t *testing.T) {
		var runs int
		d := execDeps(func(stdout, stderr io.Writer) (lifecycle.ExecStatus, error) {
			runs++
			return lifecycle.ExecStatus{}, &lifecycle.Error{Code: lifecycle.CodeConflict, Message: "busy"}
		})
		resp := postExec(t, d, "/v1/sandboxes/s/exec", "text/event-stream")
		if resp.StatusCode != 409 || runs != 1 {
			t.Fatalf("%d after %d runs, want 409 after 1", resp.StatusCode, runs)
		}
	})
}
