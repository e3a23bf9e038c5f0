package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Terminal is a shell on a PTY in a sandbox, over the API's terminal WebSocket. Read
// returns the terminal's output and io.EOF once the shell has ended (ExitCode then says
// how); Write types; Resize changes the window. One goroutine may Read while others
// Write and Resize. Close ends the shell if it still runs.
type Terminal struct {
	conn *websocket.Conn

	wmu sync.Mutex // gorilla allows one writer at a time

	pending []byte // output read from a message but not yet returned
	exit    *int
	readErr error

	closeOnce sync.Once
}

// TerminalOptions size the terminal at its start; 0 means the server's default.
type TerminalOptions struct {
	Cols, Rows uint
	// Dialer dials the WebSocket; nil uses a copy of websocket.DefaultDialer.
	Dialer *websocket.Dialer
}

// Terminal opens a shell in the sandbox (woken first if stopped).
func (c *Client) Terminal(ctx context.Context, id string, o TerminalOptions) (*Terminal, error) {
	q := url.Values{}
	if o.Cols > 0 {
		q.Set("cols", strconv.FormatUint(uint64(o.Cols), 10))
	}
	if o.Rows > 0 {
		q.Set("rows", strconv.FormatUint(uint64(o.Rows), 10))
	}
	u, err := url.Parse(c.endpoint(sandboxPath(id, "terminal"), q))
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	d := o.Dialer
	if d == nil {
		cp := *websocket.DefaultDialer
		cp.HandshakeTimeout = 0 // ctx bounds the handshake
		d = &cp
	}
	conn, resp, err := d.DialContext(ctx, u.String(), h)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			defer resp.Body.Close()
			req := &http.Request{Method: http.MethodGet, URL: u}
			return nil, errorFrom(req, resp)
		}
		return nil, fmt.Errorf("terminal: %w", err)
	}
	conn.SetReadLimit(1 << 20)
	return &Terminal{conn: conn}, nil
}

// Read reads the terminal's output.
func (t *Terminal) Read(p []byte) (int, error) {
	for len(t.pending) == 0 {
		if t.readErr != nil {
			return 0, t.readErr
		}
		typ, msg, err := t.conn.ReadMessage()
		if err != nil {
			if t.exit != nil || websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.readErr = io.EOF
			} else {
				t.readErr = fmt.Errorf("terminal: %w", err)
			}
			continue
		}
		if typ == websocket.BinaryMessage {
			t.pending = msg
			continue
		}
		var ctl struct {
			Type     string `json:"type"`
			ExitCode int    `json:"exit_code"`
		}
		if json.Unmarshal(msg, &ctl) == nil && ctl.Type == "exit" {
			code := ctl.ExitCode
			t.exit = &code
		}
	}
	n := copy(p, t.pending)
	t.pending = t.pending[n:]
	return n, nil
}

// ExitCode is the shell's exit code once Read has returned io.EOF; ok is false when the
// terminal ended without saying (the connection broke).
func (t *Terminal) ExitCode() (code int, ok bool) {
	if t.exit == nil {
		return 0, false
	}
	return *t.exit, true
}

// Write types p into the terminal.
func (t *Terminal) Write(p []byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := t.conn.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, fmt.Errorf("terminal: %w", err)
	}
	return len(p), nil
}

// Resize sets the terminal's window size.
func (t *Terminal) Resize(cols, rows uint) error {
	msg, _ := json.Marshal(map[string]any{"type": "resize", "cols": cols, "rows": rows})
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := t.conn.WriteMessage(websocket.TextMessage, msg); err != nil {
		return fmt.Errorf("terminal resize: %w", err)
	}
	return nil
}

// Close ends the terminal (and its shell, if it still runs).
func (t *Terminal) Close() error {
	var err error
	t.closeOnce.Do(func() {
		t.wmu.Lock()
		t.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		t.wmu.Unlock()
		err = t.conn.Close()
		if errors.Is(err, io.EOF) {
			err = nil
		}
	})
	return err
}
