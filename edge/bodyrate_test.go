package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// deadlineLog is the server end of a pipe that remembers the last read deadline set.
type deadlineLog struct {
	net.Conn
	mu   sync.Mutex
	last time.Time
}

func (d *deadlineLog) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	d.last = t
	d.mu.Unlock()
	return d.Conn.SetReadDeadline(t)
}

// The rule at 1 KiB/s over 10s, in a synctest bubble: the body is one end of a net.Pipe,
// whose deadlines run on the bubble's clock.
func TestRateBodyCutsAtTheDeadline(t *testing.T) {
	type send struct {
		after time.Duration // pause before writing
		n     int
	}
	every := func(pause time.Duration, n, times int) []send {
		s := make([]send, times)
		for i := range s {
			s[i] = send{pause, n}
		}
		return s
	}
	tests := []struct {
		name  string
		sends []send
		cutAt time.Duration // when the body is cut; 0: it ends without a cut
		endAt time.Duration // when it ends, if not cut
	}{
		{name: "headers, then nothing", cutAt: 10 * time.Second},
		{name: "a trickle below the rate", sends: every(time.Second, 100, 30), cutAt: 10 * time.Second},
		{name: "at the rate for a minute", sends: every(900*time.Millisecond, 1024, 60), endAt: 54 * time.Second},
		{name: "a burst, then a stall", sends: []send{{0, 20 << 10}}, cutAt: 10 * time.Second},
		{name: "progress moves the deadline", sends: []send{{0, 10 << 10}, {9 * time.Second, 10 << 10}}, cutAt: 19 * time.Second},
		{name: "a large upload", sends: every(0, 64<<10, 32), endAt: 0},
		{name: "a small body, slowly but in time", sends: []send{{5 * time.Second, 100}}, endAt: 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				client, server := net.Pipe()
				wrote := make(chan struct{})
				defer func() { server.Close(); <-wrote }() // the writer's next write fails
				dl := &deadlineLog{Conn: server}
				var cuts atomic.Int32
				body := newRateBody(server, dl, 1024, 10*time.Second, func() { cuts.Add(1) })
				go func() {
					defer close(wrote)
					for _, s := range tc.sends {
						time.Sleep(s.after)
						if _, err := client.Write(make([]byte, s.n)); err != nil {
							return // cut
						}
					}
					if tc.cutAt == 0 {
						client.Close() // EOF
					}
				}()

				began := time.Now()
				_, err := io.Copy(io.Discard, body)
				took := time.Since(began)
				if tc.cutAt > 0 {
					if !errors.Is(err, os.ErrDeadlineExceeded) || !body.wasCut() || cuts.Load() != 1 {
						t.Fatalf("err %v, cut %v, %d cut callbacks; want one cut", err, body.wasCut(), cuts.Load())
					}
					if took != tc.cutAt {
						t.Fatalf("cut after %v, want %v", took, tc.cutAt)
					}
					return
				}
				if err != nil || body.wasCut() {
					t.Fatalf("err %v, cut %v; want the whole body", err, body.wasCut())
				}
				if took != tc.endAt {
					t.Errorf("ended after %v, want %v", took, tc.endAt)
				}
				dl.mu.Lock()
				defer dl.mu.Unlock()
				if !dl.last.IsZero() {
					t.Errorf("the read deadline is still %v after EOF; the connection's next reads would inherit it", dl.last)
				}
			})
		})
	}
}

// A handler that never reads the body still bounds the server's own read of it.
func TestRateBodyFinishStartsTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := net.Pipe()
		defer client.Close()
		dl := &deadlineLog{Conn: server}
		body := newRateBody(server, dl, 1024, 10*time.Second, nil)
		body.finish()
		dl.mu.Lock()
		got := dl.last
		dl.mu.Unlock()
		if want := time.Now().Add(10 * time.Second); !got.Equal(want) {
			t.Fatalf("deadline after finish = %v, want %v", got, want)
		}
		if _, err := server.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a read past the deadline: %v", err)
		}
	})
}

// slowPost sends POST headers announcing contentLength bytes and then only sent.
func slowPost(t testing.TB, c net.Conn, host string, contentLength int, sent string) {
	t.Helper()
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s", host, contentLength, sent)
}

// readUntilClosed reads c to its end and returns what came and how long it took.
func readUntilClosed(t testing.TB, c net.Conn) (string, time.Duration) {
	t.Helper()
	began := time.Now()
	c.SetReadDeadline(began.Add(20 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the edge kept a stalled body's connection open for 20s (read %q)", b)
	}
	return string(b), time.Since(began)
}

func TestStalledBodyIsCut(t *testing.T) {
	t.Parallel()
	const window = 300 * time.Millisecond
	var limited atomic.Int32
	h := newHarness(t, func(s *Server) {
		s.BodyWindow = window
		s.OnLimit = func(l string) {
			if l == "body_rate" {
				limited.Add(1)
			}
		}
	})
	appErr := make(chan error, 1)
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		appErr <- err
	}))
	h.route("sb1", Running, port)

	c := dialFrom(t, "127.0.0.1", h.addr)
	slowPost(t, c, previewHost("sb1", port), 1000000, "only this")
	answer, took := readUntilClosed(t, c)
	if !strings.HasPrefix(answer, "HTTP/1.1 408 ") || !strings.Contains(answer, "body_too_slow") {
		t.Fatalf("a stalled body got %q; want 408 body_too_slow, then the close", answer)
	}
	if took < window/2 {
		t.Errorf("cut after %v, before its window of %v", took, window)
	}
	select {
	case err := <-appErr:
		if err == nil {
			t.Error("the app read the whole body; want its request aborted")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the app's request was not aborted")
	}
	if limited.Load() != 1 {
		t.Errorf("OnLimit(body_rate) called %d times, want 1", limited.Load())
	}
	testutil.Eventually(t, 10*time.Second, "no connection left, client or backend", func() bool {
		conns, _ := h.edge.OpenConns()
		return conns == 0 && h.edge.backends.Load() == 0
	})
}

// The edge's own answers (here: no such sandbox) do not read the body; http.Server then
// reads up to 256 KiB of it to keep the connection, and that read is bounded too.
func TestStalledBodyToAnEdgeAnswerIsCut(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *Server) { s.BodyWindow = 300 * time.Millisecond })
	c := dialFrom(t, "127.0.0.1", h.addr)
	slowPost(t, c, previewHost("nosuch", 3000), 100000, "")
	answer, _ := readUntilClosed(t, c)
	if !strings.HasPrefix(answer, "HTTP/1.1 404 ") {
		t.Fatalf("got %q, want the 404, then the close", answer)
	}
}

// A body at a good pace goes through whole, and leaves no deadline behind: the app may
// answer long after the window (a long poll, a slow build).
func TestBodyAtPaceThenSlowAnswer(t *testing.T) {
	t.Parallel()
	const window = 200 * time.Millisecond
	h := newHarness(t, func(s *Server) { s.BodyWindow = window; s.BodyMinRate = 1 << 10 })
	read := make(chan int64, 1)
	release := make(chan struct{})
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		read <- n
		select {
		case <-release:
			fmt.Fprint(w, n)
		case <-r.Context().Done():
		}
	}))
	h.route("sb1", Running, port)

	c := dialFrom(t, "127.0.0.1", h.addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "POST /build HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", previewHost("sb1", port), 4<<10)
	for range 4 {
		io.WriteString(c, strings.Repeat("x", 1<<10))
	}
	if n := <-read; n != 4<<10 {
		t.Fatalf("the app read %d bytes, want 4096", n)
	}
	done := make(chan error, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			done <- err
			return
		}
		got, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(got) != "4096" {
			err = fmt.Errorf("answer %d %q", res.StatusCode, got)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the request ended before the app answered: %v", err)
	case <-time.After(5 * window): // the bound under test: nothing may end in it
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Over HTTP/2 a stalled body is cut the same way, and only its stream: the connection's
// other requests go on.
func TestStalledBodyIsCutOverHTTP2(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *Server) { s.BodyWindow = 300 * time.Millisecond })
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}))
	h.route("sb1", Running, port)
	ts := httptest.NewUnstartedServer(h.edge)
	ts.EnableHTTP2 = true
	ts.Listener = h.edge.TLSListener(ts.Listener)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	client := ts.Client()
	var reused atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused.Store(info.Reused) }}
	post := func(body io.Reader) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", ts.URL+"/upload", body)
		req.Host = previewHost("sb1", port)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	go io.WriteString(pw, "a start, then nothing")
	res, body := post(pr)
	if res.ProtoMajor != 2 || res.StatusCode != 408 || !strings.Contains(body, "body_too_slow") {
		t.Fatalf("a stalled HTTP/2 body: %s %d %q; want HTTP/2 408 body_too_slow", res.Proto, res.StatusCode, body)
	}
	res, body = post(strings.NewReader("whole"))
	if res.StatusCode != 200 || body != "5" {
		t.Fatalf("the next request: %d %q", res.StatusCode, body)
	}
	if !reused.Load() {
		t.Error("the next request needed a new connection; the cut should end only its stream")
	}
}
