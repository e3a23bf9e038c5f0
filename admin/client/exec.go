package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ExecRequest is a command to run in a sandbox, as the sandbox user in its home.
type ExecRequest struct {
	Cmd     []string          // argv: {"sh", "-c", "echo hi"}
	Env     map[string]string // added to the sandbox's environment
	Cwd     string            // relative to the home; "" is the home
	Timeout time.Duration     // 0: the server's default
	Stdin   *string           // the command's standard input; nil gives it none
}

func (r ExecRequest) body() map[string]any {
	b := map[string]any{"cmd": r.Cmd}
	if len(r.Env) > 0 {
		b["env"] = r.Env
	}
	if r.Cwd != "" {
		b["cwd"] = r.Cwd
	}
	if r.Timeout > 0 {
		b["timeout"] = r.Timeout.String()
	}
	if r.Stdin != nil {
		b["stdin"] = *r.Stdin
	}
	return b
}

// ExecResult is a command's output and how it ended.
type ExecResult struct {
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	ExitCode   int    `json:"exit_code"`
	TimedOut   bool   `json:"timed_out"`
	Truncated  bool   `json:"truncated"` // the output was longer than the API keeps
	DurationMS int64  `json:"duration_ms"`
}

// Exec runs a command to its end and answers its output (a stopped sandbox is woken first).
func (c *Client) Exec(ctx context.Context, id string, req ExecRequest) (ExecResult, error) {
	var res ExecResult
	err := c.do(ctx, http.MethodPost, sandboxPath(id, "exec"), nil, req.body(), &res)
	return res, err
}

// ExitStatus is how a streamed command ended.
type ExitStatus struct {
	ExitCode   int   `json:"exit_code"`
	TimedOut   bool  `json:"timed_out"`
	DurationMS int64 `json:"duration_ms"`
}

// maxStreamLine bounds one NDJSON line of a streamed command (a chunk of output, escaped).
const maxStreamLine = 4 << 20

// ExecStream runs a command, writing its output to stdout and stderr as it is produced,
// and answers how it ended. Cancelling ctx kills the command. A failure once the output
// has begun is an *Error with Status 0.
func (c *Client) ExecStream(ctx context.Context, id string, req ExecRequest, stdout, stderr io.Writer) (ExitStatus, error) {
	hreq, err := c.request(ctx, http.MethodPost, sandboxPath(id, "exec"), nil, req.body())
	if err != nil {
		return ExitStatus{}, err
	}
	hreq.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.send(hreq)
	if err != nil {
		return ExitStatus{}, err
	}
	defer resp.Body.Close()
	rid := resp.Header.Get("X-Request-Id")
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := readLine(r, maxStreamLine)
		if err != nil {
			if ctx.Err() != nil {
				return ExitStatus{}, ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return ExitStatus{}, fmt.Errorf("exec stream ended before the command did: %w (request %s)", err, rid)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev struct {
			Stream     string `json:"stream"`
			Data       string `json:"data"`
			DataBase64 string `json:"data_base64"`
			ExitCode   *int   `json:"exit_code"`
			TimedOut   bool   `json:"timed_out"`
			DurationMS int64  `json:"duration_ms"`
			Error      *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			return ExitStatus{}, fmt.Errorf("exec stream: a line is not JSON: %w (request %s)", err, rid)
		}
		switch {
		case ev.Error != nil:
			return ExitStatus{}, &Error{Code: ev.Error.Code, Message: ev.Error.Message, RequestID: rid}
		case ev.ExitCode != nil:
			return ExitStatus{ExitCode: *ev.ExitCode, TimedOut: ev.TimedOut, DurationMS: ev.DurationMS}, nil
		}
		data := []byte(ev.Data)
		if ev.DataBase64 != "" {
			if data, err = base64.StdEncoding.DecodeString(ev.DataBase64); err != nil {
				return ExitStatus{}, fmt.Errorf("exec stream: bad base64 output: %w (request %s)", err, rid)
			}
		}
		w := stdout
		if ev.Stream == "stderr" {
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(data); err != nil {
				return ExitStatus{}, fmt.Errorf("write the command's %s: %w", ev.Stream, err)
			}
		}
	}
}

// readLine reads one line of at most max bytes, without its newline.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("a line is longer than %d bytes", max)
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(line, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}
