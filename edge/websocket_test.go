package edge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// echoWS is a WebSocket echo app; it closes after a "bye" message.
func echoWS(t testing.TB) http.Handler {
	up := websocket.Upgrader{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil || string(msg) == "bye" {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
}

func (h *harness) dialWS(t *testing.T, port int) *websocket.Conn {
	t.Helper()
	c, res, err := h.wsDialer().Dial("ws://"+previewHost("sb1", port)+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, res)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestWebSocketEcho(t *testing.T) {
	h := newHarness(t)
	_, port := h.backend(echoWS(t))
	counter := h.route("sb1", Running, port)

	c := h.dialWS(t, port)
	if n := h.edge.OpenWebSockets(); n != 1 {
		t.Fatalf("OpenWebSockets = %d, want 1", n)
	}
	afterHandshake := counter.Load()
	if afterHandshake == 0 {
		t.Fatal("handshake bytes not counted")
	}
	msg := strings.Repeat("frame ", 1000) // 6000 bytes, past the small copy buffer
	for i := range 20 {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != msg {
			t.Fatalf("echo %d: %d bytes, %v", i, len(got), err)
		}
	}
	// A write to the backend is counted once it returns, which can be after the echo it
	// caused has reached the client: the count catches up, it does not lead.
	testutil.Eventually(t, 10*time.Second, "240000 bytes of frames counted", func() bool { return counter.Load()-afterHandshake >= 2*20*6000 })
	c.Close() // the client leaves
	testutil.Eventually(t, 10*time.Second, "no open WebSocket", func() bool { return h.edge.OpenWebSockets() == 0 })
}

func TestWebSocketBackendCloses(t *testing.T) {
	h := newHarness(t)
	_, port := h.backend(echoWS(t))
	h.route("sb1", Running, port)
	c := h.dialWS(t, port)
	c.WriteMessage(websocket.TextMessage, []byte("bye"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); !closedByPeer(err) {
		t.Fatalf("read after the app closed: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "no open WebSocket", func() bool { return h.edge.OpenWebSockets() == 0 })
}

func TestWebSocketToSleepingSandbox(t *testing.T) {
	h := newHarness(t)
	_, port := h.backend(echoWS(t))
	h.route("sb1", Asleep, port) // the waker's address is used one-off
	c := h.dialWS(t, port)
	c.WriteMessage(websocket.TextMessage, []byte("hi"))
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "hi" {
		t.Fatalf("echo: %q, %v", got, err)
	}
}

func TestShutdownClosesWebSockets(t *testing.T) {
	h := newHarness(t)
	_, port := h.backend(echoWS(t))
	h.route("sb1", Running, port)
	var conns []*websocket.Conn
	for range 3 {
		conns = append(conns, h.dialWS(t, port))
	}
	if n := h.edge.OpenWebSockets(); n != 3 {
		t.Fatalf("OpenWebSockets = %d, want 3", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.http.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := c.ReadMessage(); !closedByPeer(err) {
			t.Errorf("conn %d: read after Shutdown: %v", i, err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "no open WebSocket", func() bool { return h.edge.OpenWebSockets() == 0 })
}

// closedByPeer reports whether a read failed because the other side closed
// (not because the read deadline passed).
func closedByPeer(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}
