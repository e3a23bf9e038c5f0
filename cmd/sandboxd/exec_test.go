package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	Event string
	Data  string
}

// readSSE parses events from r until it ends; comments (": ping") are skipped.
func readSSE(r io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" || ev.Data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event: "):
				ev.Event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

func nextEvent(t *testing.T, ch <-chan sseEvent, within time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %s", within)
	}
	return sseEvent{}
}

// streamExec posts an exec with the given Accept and returns the response; the request
// lives until ctx ends.
func streamExec(t *testing.T, ctx context.Context, url, accept string, body any) *http.Response {
	t.Helper()
	j, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
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

// waitGone polls ps in the sandbox through the buffered API until no process matches.
func waitGone(t *testing.T, d *daemon, id, pattern string) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, pattern+" gone from "+id, func() bool { return !running(t, d, id, pattern) })
}

// running says whether a process in the sandbox has pattern in its command line.
func running(t *testing.T, d *daemon, id, pattern string) bool {
	res := mustExec(t, d, id, "sh", "-c", "ps -o args | grep -v grep | grep -c '"+pattern+"' || true")
	return res.Stdout != "0\n"
}

// SSE: the first line arrives while the command still runs; a client that disconnects
// kills it.
func TestExecStreamSSE(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "sse"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := streamExec(t, ctx, d.API+"/v1/sandboxes/sse/exec", "text/event-stream",
		map[string]any{"cmd": []string{"sh", "-c", "echo first; sleep 311"}})
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("answer: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := readSSE(resp.Body)
	ev := nextEvent(t, events, 30*time.Second)
	if ev.Event != "stdout" || ev.Data != `{"data":"first\n"}` {
		t.Fatalf("first event: %+v", ev)
	}
	if !running(t, d, "sse", "sleep 311") {
		t.Fatal("the command was not running when its first line arrived")
	}
	cancel() // the client goes away
	waitGone(t, d, "sse", "sleep 311")
}

func TestExecStreamNDJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "nd"})
	cases := []struct{ name, url, accept string }{
		{"accept", "/v1/sandboxes/nd/exec", "application/x-ndjson"},
		{"query", "/v1/sandboxes/nd/exec?format=ndjson", ""},
		{"legacy path", "/sandbox/nd/exec", "application/x-ndjson"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := streamExec(t, context.Background(), d.API+c.url, c.accept, map[string]any{
				"cmd":   []string{"sh", "-c", `echo "a $X"; echo b >&2; printf 'caf\303\251 \377'; read l; echo "in:$l"; exit 5`},
				"env":   map[string]string{"X": "x<&>"},
				"stdin": "typed\n",
			})
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("answer: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			out := map[string][]byte{}
			var last map[string]any
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				var line struct {
					Stream     string `json:"stream"`
					Data       string `json:"data"`
					DataBase64 string `json:"data_base64"`
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("line %q: %v", sc.Bytes(), err)
				}
				if line.Stream == "" {
					json.Unmarshal(sc.Bytes(), &last)
					continue
				}
				if last != nil {
					t.Fatalf("output after the exit line: %s", sc.Bytes())
				}
				b, _ := base64.StdEncoding.DecodeString(line.DataBase64)
				out[line.Stream] = append(append(out[line.Stream], line.Data...), b...)
			}
			if string(out["stdout"]) != "a x<&>\ncafé \xffin:typed\n" || string(out["stderr"]) != "b\n" {
				t.Fatalf("stdout %q stderr %q", out["stdout"], out["stderr"])
			}
			if last["exit_code"] != float64(5) || last["timed_out"] != false || last["duration_ms"] == nil {
				t.Fatalf("last line: %v", last)
			}
		})
	}
}

func TestExecStreamTimeoutKills(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "sto"})
	resp := streamExec(t, context.Background(), d.API+"/v1/sandboxes/sto/exec?format=sse", "",
		map[string]any{"cmd": []string{"sh", "-c", "echo go; sleep 312 & wait"}, "timeout": "1s"})
	var exit sseEvent
	for ev := range readSSE(resp.Body) {
		if ev.Event == "exit" || ev.Event == "error" {
			exit = ev
		}
	}
	var v struct {
		ExitCode int  `json:"exit_code"`
		TimedOut bool `json:"timed_out"`
	}
	if exit.Event != "exit" || json.Unmarshal([]byte(exit.Data), &v) != nil || !v.TimedOut {
		t.Fatalf("end of stream: %+v", exit)
	}
	waitGone(t, d, "sto", "sleep 312")
}

// Errors found before any output answer as plain JSON with their status; the prior
// system's "stream":true still gets buffered JSON.
func TestExecStreamErrorsAndBufferedCompat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "compat"})
	var res execJSON
	if code := call(t, "POST", d.API+"/sandbox/compat/exec", map[string]any{"cmd": []string{"sh", "-c", "echo hi"}, "stream": true}, &res); code != 200 || res.Stdout != "hi\n" {
		t.Fatalf("prior system's stream:true: %d %+v", code, res)
	}
	resp := streamExec(t, context.Background(), d.API+"/v1/sandboxes/compat/exec", "text/event-stream", map[string]any{"cmd": []string{}})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"code":"invalid_request"`) {
		t.Fatalf("empty cmd, streaming: %d %s", resp.StatusCode, body)
	}
	resp = streamExec(t, context.Background(), d.API+"/v1/sandboxes/nope/exec", "text/event-stream", map[string]any{"cmd": []string{"true"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown sandbox, streaming: %d", resp.StatusCode)
	}
}

func TestDetachedExecHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "detach"})
	var raw map[string]any
	code := call(t, "POST", d.API+"/v1/sandboxes/detach/exec", map[string]any{
		"cmd": []string{"sh", "-c", `echo one; while [ ! -e "$HOME/go" ]; do sleep 0.05; done; echo two; exit 7`}, "detach": true}, &raw)
	if code != http.StatusAccepted || raw["status"] != "running" || raw["id"] != nil {
		t.Fatalf("detach: %d %v", code, raw)
	}
	execID, _ := raw["exec_id"].(string)
	statusURL, outputURL := "/v1/sandboxes/detach/execs/"+execID, "/v1/sandboxes/detach/execs/"+execID+"/output"
	if raw["status_url"] != statusURL || raw["output_url"] != outputURL {
		t.Fatalf("urls: %v", raw)
	}
	var st map[string]any
	if code := call(t, "GET", d.API+statusURL, nil, &st); code != 200 || st["status"] != "running" || st["exit_code"] != nil {
		t.Fatalf("status while gated: %d %v", code, st)
	}
	mustExec(t, d, "detach", "touch", "go")
	testutil.Eventually(t, 15*time.Second, "the exec to exit", func() bool {
		call(t, "GET", d.API+statusURL, nil, &st)
		return st["status"] == "exited"
	})
	if st["exit_code"] != float64(7) || st["started_at"] == nil || describe(st["cmd"]) != describe([]string{"sh", "-c", `echo one; while [ ! -e "$HOME/go" ]; do sleep 0.05; done; echo two; exit 7`}) {
		t.Fatalf("exited: %v", st)
	}

	get := func(method, rng string) (*http.Response, string) {
		req, _ := http.NewRequest(method, d.API+outputURL, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get("GET", ""); resp.StatusCode != 200 || body != "one\ntwo\n" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("output: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, body := get("GET", "bytes=4-"); resp.StatusCode != http.StatusPartialContent || body != "two\n" {
		t.Fatalf("range: %d %q", resp.StatusCode, body)
	}
	if resp, body := get("HEAD", ""); resp.StatusCode != 200 || resp.ContentLength != 8 || body != "" {
		t.Fatalf("head: %d %d %q", resp.StatusCode, resp.ContentLength, body)
	}
	var apiErr struct{ Error struct{ Code string } }
	for _, bad := range []string{"01hzzzzzzzzzzzzzzzzzzzzzzz", "..%2F..%2Fetc", "NOTANID"} {
		if code := call(t, "GET", d.API+"/v1/sandboxes/detach/execs/"+bad, nil, &apiErr); code != 404 || apiErr.Error.Code != "not_found" {
			t.Errorf("status of %s: %d %+v", bad, code, apiErr)
		}
	}
}

// wsClient reads a terminal WebSocket: binary output into a buffer, text messages onto a
// channel, and the close frame's code.
type wsClient struct {
	conn   *websocket.Conn
	mu     sync.Mutex
	out    bytes.Buffer
	change chan struct{}
	text   chan string
	closed chan int // the close code, once
}

func dialTerminal(t *testing.T, d *daemon, id, query string) *wsClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(d.API, "http") + "/v1/sandboxes/" + id + "/terminal" + query
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("dial %s: %v %s", url, err, body)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{conn: conn, change: make(chan struct{}, 1), text: make(chan string, 16), closed: make(chan int, 1)}
	go func() {
		for {
			typ, msg, err := conn.ReadMessage()
			if err != nil {
				code := -1
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				c.closed <- code
				return
			}
			if typ == websocket.TextMessage {
				c.text <- string(msg)
				continue
			}
			c.mu.Lock()
			c.out.Write(msg)
			c.mu.Unlock()
			select {
			case c.change <- struct{}{}:
			default:
			}
		}
	}()
	return c
}

func (c *wsClient) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		ok := strings.Contains(c.out.String(), s)
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.change:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("terminal never showed %q; got %q", s, c.out.String())
		}
	}
}

func (c *wsClient) send(t *testing.T, typ int, msg string) {
	t.Helper()
	if err := c.conn.WriteMessage(typ, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestTerminalWebSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "tty"})
	c := dialTerminal(t, d, "tty", "?cols=80&rows=24")
	c.send(t, websocket.BinaryMessage, "echo hello-$((1+2)); stty size\n")
	c.waitFor(t, "hello-3")
	c.waitFor(t, "24 80")
	c.send(t, websocket.TextMessage, `{"type":"resize","cols":100,"rows":40}`)
	c.send(t, websocket.TextMessage, `{"type":"input","data":"stty size\n"}`)
	c.waitFor(t, "40 100")
	c.send(t, websocket.TextMessage, `{"type":"bogus"}`) // ignored, the session goes on
	c.send(t, websocket.BinaryMessage, "exit 3\n")
	select {
	case msg := <-c.text:
		if msg != `{"type":"exit","exit_code":3}` {
			t.Fatalf("exit message: %s", msg)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit message")
	}
	select {
	case code := <-c.closed:
		if code != websocket.CloseNormalClosure {
			t.Fatalf("close code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no close after the exit message")
	}

	// Not a WebSocket request: a JSON error before any upgrade.
	var apiErr struct{ Error struct{ Code string } }
	if code := call(t, "GET", d.API+"/v1/sandboxes/tty/terminal", nil, &apiErr); code != http.StatusUpgradeRequired || apiErr.Error.Code != "upgrade_required" {
		t.Fatalf("plain GET: %d %+v", code, apiErr)
	}
	// A page of another origin may not open a shell when auth is off.
	hdr := http.Header{"Origin": {"http://evil.example"}}
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(d.API, "http")+"/v1/sandboxes/tty/terminal", hdr); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin terminal: %v %v", err, resp)
	}
}

// A terminal on a stopped sandbox wakes it; a client that goes away kills the shell.
func TestTerminalWakesAndDisconnectKills(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "ttywake"})
	if code := call(t, "POST", d.API+"/v1/sandboxes/ttywake/stop", nil, nil); code != http.StatusOK {
		t.Fatalf("stop: %d", code)
	}
	if sb, _ := getSandbox(t, d, "ttywake"); sb.Status != "stopped" {
		t.Fatalf("after stop: %+v", sb)
	}
	c := dialTerminal(t, d, "ttywake", "")
	c.send(t, websocket.BinaryMessage, "echo awake-$((40+2))\n")
	c.waitFor(t, "awake-42")
	if sb, _ := getSandbox(t, d, "ttywake"); sb.Status != "running" {
		t.Fatalf("after the terminal: %+v", sb)
	}
	if !running(t, d, "ttywake", "bash -l") {
		t.Fatal("no login shell while the terminal is open")
	}
	c.conn.NetConn().Close() // gone without a close frame
	waitGone(t, d, "ttywake", "bash -l")
}
