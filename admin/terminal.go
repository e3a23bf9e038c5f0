package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// The terminal: GET /v1/sandboxes/{id}/terminal[?cols=&rows=] upgrades to a WebSocket
// carrying a PTY (lifecycle.Terminal).
//
//	server → client  binary: PTY output
//	                 text:   {"type":"exit","exit_code":N} when the shell ends, then a
//	                         normal close
//	client → server  binary: input bytes
//	                 text:   {"type":"resize","cols":N,"rows":N} or {"type":"input","data":"..."}
//
// The server pings every terminalPing; a client silent (no message, no pong) for
// terminalPongWait is gone. A client that goes away closes the terminal, which kills the
// shell. A terminal counts as sandbox activity while it is used, not while it is open
// (lifecycle.Terminal says why).
//
// Auth: the API's bearer token, in the Authorization header. Browsers cannot set headers
// on a WebSocket, so a browser client needs a proxy that adds it; accepting "?token=" on
// this one route would do too, but belongs in auth.go and is left as a proposal (a token in
// a URL lands in logs and histories).
const (
	terminalPing      = 30 * time.Second
	terminalPongWait  = 2 * terminalPing
	terminalWriteWait = 10 * time.Second
	terminalCloseWait = 2 * time.Second // for the client's close reply after ours
	terminalMaxInput  = 64 << 10        // largest client message
)

// Terminals opens a shell on a PTY in a running sandbox (the handler wakes it first).
type Terminals interface {
	Terminal(ctx context.Context, id string, req lifecycle.TerminalRequest) (lifecycle.Terminal, error)
}

type terminalControl struct {
	Type string `json:"type"`
	Cols uint   `json:"cols"`
	Rows uint   `json:"rows"`
	Data string `json:"data"`
}

type terminalExit struct {
	Type     string `json:"type"`
	ExitCode int    `json:"exit_code"`
}

func (s *Server) terminal(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req lifecycle.TerminalRequest
	for name, dst := range map[string]*uint{"cols": &req.Cols, "rows": &req.Rows} {
		if v := r.URL.Query().Get(name); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 || n > lifecycle.MaxTerminalSize {
				return badRequest("%s must be a number from 1 to %d", name, lifecycle.MaxTerminalSize)
			}
			*dst = uint(n)
		}
	}
	// Everything that can fail answers JSON before the upgrade.
	if !websocket.IsWebSocketUpgrade(r) {
		return &apiError{http.StatusUpgradeRequired, "upgrade_required", "the terminal speaks WebSocket: send an upgrade request"}
	}
	if _, err := s.sandboxes.Get(r.Context(), id); err != nil {
		return err
	}
	var term lifecycle.Terminal
	err = s.awake(r.Context(), id, func() (err error) {
		term, err = s.terminals.Terminal(r.Context(), id, req)
		return err
	})
	if err != nil {
		return err
	}
	up := websocket.Upgrader{
		ReadBufferSize: 4 << 10, WriteBufferSize: 32 << 10,
		// nil: gorilla's same-origin check. authenticate has already refused every
		// cross-origin page (cross-site WebSocket hijacking) on every route, this one too.
		CheckOrigin: nil,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			s.writeError(w, r, &apiError{status, "bad_handshake", reason.Error()})
		},
	}
	conn, err := up.Upgrade(hijackable{w}, r, nil)
	if err != nil {
		term.Close()
		return nil // Upgrade answered
	}
	s.record(r, "sandbox.terminal", id, "")
	if !s.sockets.add(conn) {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "sandboxd is shutting down"), time.Now().Add(time.Second))
		conn.Close()
		term.Close()
		return nil
	}
	defer s.sockets.remove(conn)
	s.serveTerminal(conn, term, id)
	return nil
}

// sockets tracks the API's open WebSockets: http.Server's Shutdown does not see hijacked
// connections, so CloseSockets ends them (a terminal's shell is killed with its socket).
type sockets struct {
	mu     sync.Mutex
	closed bool
	conns  map[*websocket.Conn]struct{}
}

func (ss *sockets) add(c *websocket.Conn) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	if ss.conns == nil {
		ss.conns = map[*websocket.Conn]struct{}{}
	}
	ss.conns[c] = struct{}{}
	return true
}

func (ss *sockets) remove(c *websocket.Conn) {
	ss.mu.Lock()
	delete(ss.conns, c)
	ss.mu.Unlock()
}

// CloseSockets sends every open WebSocket a "going away" close and closes it, refuses new
// ones, and ends task event streams (their clients resume with Last-Event-ID). Register it
// with the API server's RegisterOnShutdown.
func (s *Server) CloseSockets() {
	s.stopOnce.Do(func() { close(s.stopping) })
	s.sockets.mu.Lock()
	s.sockets.closed = true
	conns := make([]*websocket.Conn, 0, len(s.sockets.conns))
	for c := range s.sockets.conns {
		conns = append(conns, c)
	}
	s.sockets.mu.Unlock()
	for _, c := range conns {
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "sandboxd is shutting down"), time.Now().Add(time.Second))
		c.Close()
	}
}

// hijackable offers http.Hijacker, which gorilla/websocket asserts, through wrappers that
// only offer Unwrap (the request log's statusWriter).
type hijackable struct{ http.ResponseWriter }

func (h hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(h.ResponseWriter).Hijack()
}

// serveTerminal pumps a terminal over conn until the shell ends or the client goes away,
// then closes both. Three goroutines: PTY → output channel, client → PTY, and this one,
// the connection's only writer (gorilla allows one; WriteControl may run beside it). All
// have returned when it returns.
func (s *Server) serveTerminal(conn *websocket.Conn, term lifecycle.Terminal, id string) {
	output := make(chan []byte)
	quit := make(chan struct{})       // the writer is done: the PTY pump gives up
	clientGone := make(chan struct{}) // the client's side ended or failed
	var wg sync.WaitGroup
	defer func() {
		close(quit)
		term.Close() // kills the shell if it still runs; ends the PTY pump
		conn.Close() // ends the client pump
		wg.Wait()
	}()

	wg.Go(func() {
		defer close(output)
		buf := make([]byte, 32<<10)
		for {
			n, err := term.Read(buf)
			if n > 0 {
				select {
				case output <- bytes.Clone(buf[:n]):
				case <-quit:
					return
				}
			}
			if err != nil {
				return
			}
		}
	})

	conn.SetReadLimit(terminalMaxInput)
	conn.SetReadDeadline(time.Now().Add(terminalPongWait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(terminalPongWait))
	})
	wg.Go(func() {
		defer close(clientGone)
		for {
			typ, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			conn.SetReadDeadline(time.Now().Add(terminalPongWait))
			typed, err := terminalInput(term, typ, msg)
			if err != nil && typed {
				return // the PTY is gone
			}
			if err != nil {
				// A bad control message or a failed resize is no reason to end a session.
				s.log.Debug("terminal control", "sandbox", id, "err", err)
			}
		}
	})

	ping := time.NewTicker(terminalPing)
	defer ping.Stop()
	for {
		select {
		case b, ok := <-output:
			if !ok {
				s.terminalEnded(conn, term, clientGone)
				return
			}
			conn.SetWriteDeadline(time.Now().Add(terminalWriteWait))
			if err := conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
				return
			}
		case <-ping.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(terminalWriteWait)); err != nil {
				return
			}
		case <-clientGone:
			return
		}
	}
}

// terminalInput applies one client message: bytes to type, or a control message. typed
// says whether the error, if any, is the PTY's refusing input.
func terminalInput(term lifecycle.Terminal, typ int, msg []byte) (typed bool, err error) {
	if typ == websocket.BinaryMessage {
		_, err := term.Write(msg)
		return true, err
	}
	var c terminalControl
	if err := json.Unmarshal(msg, &c); err != nil {
		return false, fmt.Errorf("control message is not JSON: %w", err)
	}
	switch c.Type {
	case "resize":
		return false, term.Resize(c.Cols, c.Rows)
	case "input":
		_, err := term.Write([]byte(c.Data))
		return true, err
	}
	return false, fmt.Errorf("unknown control message type %q", c.Type)
}

// terminalEnded tells the client how the shell ended, closes the WebSocket normally and
// waits a moment for the client's close reply.
func (s *Server) terminalEnded(conn *websocket.Conn, term lifecycle.Terminal, clientGone <-chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), terminalWriteWait)
	code, err := term.Wait(ctx)
	cancel()
	conn.SetWriteDeadline(time.Now().Add(terminalWriteWait))
	if err == nil {
		msg, _ := json.Marshal(terminalExit{Type: "exit", ExitCode: code})
		if conn.WriteMessage(websocket.TextMessage, msg) != nil {
			return
		}
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "shell exited")
	if conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(terminalWriteWait)) != nil {
		return
	}
	t := time.NewTimer(terminalCloseWait)
	defer t.Stop()
	select {
	case <-clientGone:
	case <-t.C:
	}
}
