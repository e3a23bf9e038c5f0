package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// preview sends a request to a sandbox's preview host through the edge.
func preview(t *testing.T, d *daemon, id string, port int, method, path, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+d.HTTP+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = fmt.Sprintf("s-%s-%d.preview.localhost", id, port)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.Host+path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func dialWS(t *testing.T, d *daemon, id string, port int) *websocket.Conn {
	t.Helper()
	dialer := websocket.Dialer{
		NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", d.HTTP)
		},
		HandshakeTimeout: 90 * time.Second,
	}
	c, resp, err := dialer.Dial(fmt.Sprintf("ws://s-%s-%d.preview.localhost/ws", id, port), nil)
	if err != nil {
		t.Fatalf("websocket dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wsEcho(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("ws write: %v", err)
	}
	_, got, err := c.ReadMessage()
	if err != nil || string(got) != msg {
		t.Fatalf("ws echo = %q, %v; want %q", got, err, msg)
	}
}

func TestPreviewThroughEdge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	sb := mustCreate(t, d, map[string]any{"id": "web", "ports": []int{3000}})
	if want := "http://s-web-3000.preview.localhost:"; !strings.HasPrefix(sb.PreviewURLs["3000"], want) {
		t.Errorf("preview url = %q, want prefix %q", sb.PreviewURLs["3000"], want)
	}
	t.Run("GET", func(t *testing.T) {
		resp, body := preview(t, d, "web", 3000, "GET", "/", "", nil)
		if resp.StatusCode != 200 || body != "hello from web" {
			t.Fatalf("GET / = %d %q", resp.StatusCode, body)
		}
	})
	t.Run("host is any case, with a port", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+d.HTTP+"/", nil)
		req.Host = "S-WEB-3000.Preview.LOCALHOST:8080"
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("mixed-case host: %v %v", resp, err)
		}
		resp.Body.Close()
	})
	t.Run("POST with a body", func(t *testing.T) {
		resp, body := preview(t, d, "web", 3000, "POST", "/echo", "the body", http.Header{"Content-Type": {"text/plain"}})
		if resp.StatusCode != 200 || body != "the body" || resp.Header.Get("X-Echo-Method") != "POST" {
			t.Fatalf("POST /echo = %d %q %v", resp.StatusCode, body, resp.Header)
		}
		if got := resp.Header.Get("X-Echo-Host"); got != "s-web-3000.preview.localhost" {
			t.Errorf("the app saw Host %q, want the preview host", got)
		}
		if got := resp.Header.Get("X-Echo-Forwarded-Host"); got != "s-web-3000.preview.localhost" {
			t.Errorf("X-Forwarded-Host = %q", got)
		}
	})
	t.Run("WebSocket echo", func(t *testing.T) {
		c := dialWS(t, d, "web", 3000)
		for i := 0; i < 3; i++ {
			wsEcho(t, c, fmt.Sprintf("frame %d", i))
		}
	})
	t.Run("SSE ticks arrive one by one", func(t *testing.T) {
		// The second tick is a minute away: the first can only arrive if it is flushed.
		req, _ := http.NewRequest("GET", "http://"+d.HTTP+"/sse?n=2&ms=60000", nil)
		req.Host = "s-web-3000.preview.localhost"
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("content type %q", ct)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				return // the first tick, while the stream is still open
			}
		}
		t.Fatalf("no tick before the stream ended: %v", sc.Err())
	})
}

// 100 requests to a stopped sandbox: exactly one container start, 100 right answers, a POST
// body intact across the wake, and a WebSocket opened to the sleeping sandbox echoes.
func TestWakeHoldsRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "sleepy", "ports": []int{3000}})
	stop := func() {
		if code := call(t, "POST", d.API+"/v1/sandboxes/sleepy/stop", nil, nil); code != 200 {
			t.Fatalf("stop: %d", code)
		}
	}
	stop()

	// The Engine's record of starts between now and the last answer counts the wake's
	// starts; asking for a closed interval afterwards misses none and waits for none.
	since := time.Now()
	const n = 100
	var wg sync.WaitGroup
	failures := make(chan string, n+1)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				body := strings.Repeat("payload-", 1000)
				resp, got := preview(t, d, "sleepy", 3000, "POST", "/echo", body, nil)
				if resp.StatusCode != 200 || got != body {
					failures <- fmt.Sprintf("POST across the wake: %d, %d bytes back", resp.StatusCode, len(got))
				}
				return
			}
			resp, got := preview(t, d, "sleepy", 3000, "GET", "/", "", nil)
			if resp.StatusCode != 200 || got != "hello from sleepy" {
				failures <- fmt.Sprintf("GET: %d %q", resp.StatusCode, got)
			}
		}()
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	if got := e.containerStarts(t, "sleepy", since, time.Now()); got != 1 {
		t.Fatalf("container starts = %d, want exactly 1", got)
	}
	stop()
	c := dialWS(t, d, "sleepy", 3000)
	wsEcho(t, c, "woken by a websocket")
}

func TestEdgeErrorAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["SANDBOXD_PROBE_WINDOW"] = "300ms"
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "err", "ports": []int{3000, 3001}})
	cases := []struct {
		name   string
		host   string
		status int
		code   string
		text   string
	}{
		{"unknown host", "example.com", 404, "unknown_host", ""},
		{"unknown sandbox", "s-nosuch-3000.preview.localhost", 404, "not_found", ""},
		{"undeclared port", "s-err-4000.preview.localhost", 404, "port_not_declared", "4000"},
		{"port closed", "s-err-3001.preview.localhost", 502, "port_closed", "port 3001 is closed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkAnswer(t, d, c.host, c.status, c.code, c.text)
		})
	}
}

// checkAnswer asks host as a browser (HTML) and as a program (JSON).
func checkAnswer(t *testing.T, d *daemon, host string, status int, code, text string) {
	t.Helper()
	for _, accept := range []string{"text/html,application/xhtml+xml", "application/json"} {
		req, _ := http.NewRequest("GET", "http://"+d.HTTP+"/", nil)
		req.Host = host
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Fatalf("%s (%s): status %d, want %d: %s", host, accept, resp.StatusCode, status, b)
		}
		if strings.HasPrefix(accept, "text/html") {
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), text) {
				t.Fatalf("%s: HTML answer %q lacks %q", host, b, text)
			}
			continue
		}
		var v struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(b, &v); err != nil || v.Error.Code != code || !strings.Contains(v.Error.Message, text) {
			t.Fatalf("%s: JSON answer %s, want code %s with %q", host, b, code, text)
		}
	}
}

// A start that does not finish within SANDBOXD_WAKE_TIMEOUT answers 504 (the hook holds the
// start forever, so this runs as a child process).
func TestWakeTimeoutAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["SANDBOXD_WAKE_TIMEOUT"] = "1s"
	p := e.startHooked("start.begin", nil)
	mustCreate(t, p.daemon, map[string]any{"id": "slow", "ports": []int{3000}})
	if code := call(t, "POST", p.API+"/v1/sandboxes/slow/stop", nil, nil); code != 200 {
		t.Fatalf("stop: %d", code)
	}
	checkAnswer(t, p.daemon, "s-slow-3000.preview.localhost", 504, "wake_timeout", "")
}
