package admin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/wake"
)

// Execs runs commands in a running sandbox (the handler wakes it first).
type Execs interface {
	// Exec runs a command to its end and answers its output.
	Exec(ctx context.Context, id string, req lifecycle.ExecRequest) (lifecycle.ExecResult, error)
	// ExecStream runs a command, writing its output as it comes; it writes nothing once it
	// has returned.
	ExecStream(ctx context.Context, id string, req lifecycle.ExecRequest, stdout, stderr io.Writer) (lifecycle.ExecStatus, error)
}

type execBody struct {
	Cmd     []string          `json:"cmd"`
	Env     map[string]string `json:"env"`
	Cwd     string            `json:"cwd"`
	Timeout duration          `json:"timeout"`
	Stdin   *string           `json:"stdin"`
	// Stream is the prior system's flag: its clients send it and expect buffered JSON, so
	// it is accepted and changes nothing. Streaming is asked for with Accept (or ?format=).
	Stream bool `json:"stream"`
	// Detach starts the command and answers 202 with its exec id at once.
	Detach bool `json:"detach"`
}

type execView struct {
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	ExitCode   int    `json:"exit_code"`
	TimedOut   bool   `json:"timed_out"`
	Truncated  bool   `json:"truncated"`
	DurationMS int64  `json:"duration_ms"`
}

// Output formats of POST .../exec.
const (
	formatBuffered = "" // one JSON object once the command ends (the default)
	formatSSE      = "sse"
	formatNDJSON   = "ndjson"
)

// exec runs a command. By default it answers its output and exit code as one JSON object
// once it ends; "Accept: text/event-stream" or "application/x-ndjson" (or ?format=sse|ndjson)
// streams the output as it comes (execStream); "detach":true starts it and answers 202
// with an exec id (execs.go). A stopped sandbox is woken first, through the same waker (and
// admission) as the edge.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	format, err := execFormat(r)
	if err != nil {
		return err
	}
	var b execBody
	if err := decode(w, r, &b, false); err != nil {
		return err
	}
	req := lifecycle.ExecRequest{Cmd: b.Cmd, Env: b.Env, Cwd: b.Cwd, Timeout: time.Duration(b.Timeout)}
	if b.Stdin != nil {
		req.Stdin = strings.NewReader(*b.Stdin)
	}
	if _, err := s.sandboxes.Get(r.Context(), id); err != nil {
		return err
	}
	first := ""
	if len(b.Cmd) > 0 {
		first = b.Cmd[0]
	}
	return s.awake(r.Context(), id, func() error {
		switch {
		case b.Detach:
			return s.execDetached(w, r, id, req)
		case format != formatBuffered:
			s.record(r, "sandbox.exec", id, first)
			return s.execStream(w, r, id, req, format)
		}
		start := s.now()
		res, err := s.execs.Exec(r.Context(), id, req)
		if err != nil {
			return err
		}
		s.record(r, "sandbox.exec", id, first)
		writeJSON(w, http.StatusOK, execView{
			Stdout: string(res.Stdout), Stderr: string(res.Stderr), ExitCode: res.ExitCode,
			TimedOut: res.TimedOut, Truncated: res.Truncated, DurationMS: s.now().Sub(start).Milliseconds(),
		})
		return nil
	})
}

// awake wakes the sandbox and runs op; when op finds the container died since the wake
// (lifecycle.ErrNotRunning, which comes before anything is written), wake.Do wakes it
// again and runs op once more (issue 11: exec answered 500 until the periodic sweep
// noticed the death).
func (s *Server) awake(ctx context.Context, id string, op func() error) error {
	return wake.Do(ctx, s.waker, id, lifecycle.ErrNotRunning, op)
}

// execFormat picks the output format: ?format= wins, else the first media type of Accept
// that names one (q-values are not weighed); anything else is buffered JSON.
func execFormat(r *http.Request) (string, error) {
	switch f := r.URL.Query().Get("format"); f {
	case formatSSE, formatNDJSON:
		return f, nil
	case "", "json":
	default:
		return "", badRequest("format %q is unknown: use sse, ndjson or json", f)
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/event-stream":
			return formatSSE, nil
		case "application/x-ndjson", "application/ndjson", "application/jsonl":
			return formatNDJSON, nil
		case "application/json":
			return formatBuffered, nil
		}
	}
	return formatBuffered, nil
}

// Streaming exec.
//
// SSE: each chunk of output is "event: stdout" or "event: stderr" with data
// {"data":"<text>"}, or {"data_base64":"..."} for bytes that are not UTF-8; the end is
// "event: exit" with {"exit_code","timed_out","duration_ms"}; a failure once streaming has
// begun is "event: error" with {"code","message"}. ": ping" comments keep proxies from
// closing a quiet stream. NDJSON: one object per line, {"stream":"stdout","data":"..."},
// then {"exit_code",...} or {"error":{"code","message"}}.
//
// The status line and headers go out with the first event (or the first heartbeat), so a
// command that cannot start still answers a plain JSON error with its status. The request's
// context is the command's: a client that disconnects kills it, and so does a write that
// fails or stalls for streamWriteTimeout.
//
// Times come from the Server's clock (Now, Heartbeat), so the heartbeat is tested under
// testing/synctest; write deadlines alone use time.Now, for the connection measures them
// against the wall clock.
const (
	heartbeatEvery     = 15 * time.Second // Server.Heartbeat's default
	streamWriteTimeout = 30 * time.Second
)

// heartbeat is how often a quiet stream sends a keep-alive.
func (s *Server) heartbeat() time.Duration {
	if s.Heartbeat > 0 {
		return s.Heartbeat
	}
	return heartbeatEvery
}

type chunkEvent struct {
	Stream     string `json:"stream,omitempty"` // NDJSON only: SSE names the stream in the event
	Data       string `json:"data,omitempty"`
	DataBase64 string `json:"data_base64,omitempty"`
}

type exitEvent struct {
	ExitCode   int   `json:"exit_code"`
	TimedOut   bool  `json:"timed_out"`
	DurationMS int64 `json:"duration_ms"`
}

type errorEvent struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Server) execStream(w http.ResponseWriter, r *http.Request, id string, req lifecycle.ExecRequest, format string) error {
	es := &eventStream{w: w, rc: http.NewResponseController(w), sse: format == formatSSE}
	defer es.rc.SetWriteDeadline(time.Time{}) // the connection may serve another request
	stdout := &chunkWriter{es: es, stream: "stdout"}
	stderr := &chunkWriter{es: es, stream: "stderr"}

	stopBeat := make(chan struct{})
	beatDone := make(chan struct{})
	go func() {
		defer close(beatDone)
		t := time.NewTicker(s.heartbeat())
		defer t.Stop()
		for {
			select {
			case <-t.C:
				es.heartbeat()
			case <-stopBeat:
				return
			}
		}
	}()
	start := s.now()
	st, err := s.execs.ExecStream(r.Context(), id, req, stdout, stderr)
	close(stopBeat)
	<-beatDone
	// ExecStream writes nothing once it has returned: from here this goroutine is the only
	// writer.
	if err == nil {
		err = errors.Join(stdout.flush(), stderr.flush())
	}
	switch {
	case r.Context().Err() != nil:
		return nil // the client went away; there is nobody to tell
	case err != nil && !es.begun():
		return err // nothing sent yet: an ordinary JSON error with its status
	case err != nil:
		_, code, msg := publicError(err)
		if code == string(lifecycle.CodeInternal) {
			s.log.Error("streaming exec failed", "sandbox", id, "err", err)
		}
		es.send("error", errorEvent{code, msg})
		return nil
	}
	es.send("exit", exitEvent{st.ExitCode, st.TimedOut, s.now().Sub(start).Milliseconds()})
	return nil
}

// eventStream writes events to a streaming response. A mutex serializes its writers
// (ExecStream's output copier and the heartbeat); the first failed write fails every later
// one, which stops the copier and so kills the command.
type eventStream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	sse bool

	mu     sync.Mutex
	header bool // status and headers sent
	err    error
}

func (es *eventStream) begun() bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.header
}

// send writes one event and flushes it.
func (es *eventStream) send(event string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	es.mu.Lock()
	defer es.mu.Unlock()
	var b []byte
	if es.sse {
		b = make([]byte, 0, len(data)+len(event)+16)
		b = append(append(append(append(b, "event: "...), event...), "\ndata: "...), data...)
		b = append(b, "\n\n"...)
	} else {
		b = append(data, '\n')
	}
	return es.writeLocked(b)
}

// heartbeat keeps a quiet stream open through proxies: an SSE comment; for NDJSON, which
// has no comments, it only sends the headers if they have not gone yet.
func (es *eventStream) heartbeat() {
	es.mu.Lock()
	defer es.mu.Unlock()
	var b []byte
	if es.sse {
		b = []byte(": ping\n\n")
	}
	es.writeLocked(b)
}

func (es *eventStream) writeLocked(b []byte) error {
	if es.err != nil {
		return es.err
	}
	if !es.header {
		es.header = true
		h := es.w.Header()
		if es.sse {
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
		} else {
			h.Set("Content-Type", "application/x-ndjson")
		}
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
		es.w.WriteHeader(http.StatusOK)
	}
	// A client that stops reading without going away must not hold the command (and this
	// handler) forever.
	es.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if len(b) > 0 {
		if _, err := es.w.Write(b); err != nil {
			es.err = err
			return err
		}
	}
	if err := es.rc.Flush(); err != nil {
		es.err = err
		return err
	}
	return nil
}

// chunkWriter turns one output stream into events. JSON strings hold only UTF-8, so a
// multi-byte character split between two reads is held back until its end arrives, and a
// chunk that still is not UTF-8 goes as data_base64 rather than be mangled.
type chunkWriter struct {
	es     *eventStream
	stream string
	carry  []byte // the start of a character the last chunk cut in two (at most 3 bytes)
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	data := p
	if len(c.carry) > 0 {
		data = append(c.carry, p...)
		c.carry = nil
	}
	if n := incompleteTail(data); n > 0 {
		c.carry = append([]byte(nil), data[len(data)-n:]...)
		data = data[:len(data)-n]
	}
	if len(data) == 0 {
		return len(p), nil
	}
	if err := c.send(data); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush sends what is held back once the stream has ended.
func (c *chunkWriter) flush() error {
	if len(c.carry) == 0 {
		return nil
	}
	data := c.carry
	c.carry = nil
	return c.send(data)
}

func (c *chunkWriter) send(data []byte) error {
	ev := chunkEvent{}
	if !c.es.sse {
		ev.Stream = c.stream
	}
	if utf8.Valid(data) {
		ev.Data = string(data)
	} else {
		ev.DataBase64 = base64.StdEncoding.EncodeToString(data)
	}
	return c.es.send(c.stream, ev)
}

// incompleteTail is how many bytes at the end of b begin a UTF-8 character that b cuts off.
func incompleteTail(b []byte) int {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if utf8.FullRune(b[len(b)-i:]) {
				return 0
			}
			return i
		}
	}
	return 0
}
