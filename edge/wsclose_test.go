package edge

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsFrame builds one frame with a payload of n bytes, masked or not.
func wsFrame(opcode byte, n int, masked bool) []byte {
	f := []byte{0x80 | opcode}
	var maskBit byte
	if masked {
		maskBit = 0x80
	}
	switch {
	case n < 126:
		f = append(f, maskBit|byte(n))
	case n <= 0xffff:
		f = append(f, maskBit|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, maskBit|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if masked {
		f = append(f, 1, 2, 3, 4)
	}
	return append(f, bytes.Repeat([]byte{'x'}, n)...)
}

func TestWSFramesBoundaries(t *testing.T) {
	frames := [][]byte{
		wsFrame(0x1, 5, false),
		wsFrame(0x2, 0, false),
		wsFrame(0x9, 125, false), // the longest 7-bit length
		wsFrame(0x2, 126, false), // the shortest 16-bit length
		wsFrame(0x1, 300, true),
		wsFrame(0x2, 70000, false), // 64-bit length
		wsFrame(0x8, 2, false),
	}
	var stream []byte
	ends := map[int]bool{}
	for _, f := range frames {
		stream = append(stream, f...)
		ends[len(stream)] = true
	}
	for _, chunk := range []int{1, 2, 3, 7, 13, 4096, len(stream)} {
		var f wsFrames
		for off := 0; off < len(stream); {
			next := min(off+chunk, len(stream))
			f.feed(stream[off:next])
			off = next
			if got := f.boundary(); got != ends[off] {
				t.Fatalf("chunks of %d: after %d bytes boundary = %v, want %v", chunk, off, got, ends[off])
			}
		}
	}
}

// The edge's shutdown ends a WebSocket with a Close frame, 1001 Going Away, and
// CloseWebSockets returns once every upgraded connection is closed.
func TestCloseWebSocketsSendsGoingAway(t *testing.T) {
	h := newHarness(t)
	_, port := h.backend(echoWS(t))
	h.route("sb1", Running, port)
	conns := []*websocket.Conn{h.dialWS(t, port), h.dialWS(t, port)}
	for _, c := range conns {
		if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.ReadMessage(); err != nil || string(got) != "hi" {
			t.Fatalf("echo: %q, %v", got, err)
		}
	}
	h.edge.CloseWebSockets()
	if n := h.edge.OpenWebSockets(); n != 0 {
		t.Fatalf("OpenWebSockets after CloseWebSockets = %d", n)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Errorf("conn %d: read after CloseWebSockets: %v, want a close 1001", i, err)
		}
	}
	if _, _, err := h.wsDialer().Dial("ws://"+previewHost("sb1", port)+"/ws", nil); err == nil {
		t.Error("a new WebSocket was accepted after CloseWebSockets")
	}
}

// A frame from the app only partly relayed when the edge stops gets nothing added after
// it: a Close frame there would be read as payload. The connection just closes.
func TestCloseWebSocketsMidFrameAddsNothing(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	// The app announces 1000 bytes of payload and sends 10.
	partial := append([]byte{0x82, 126, 0x03, 0xe8}, bytes.Repeat([]byte{'p'}, 10)...)
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Write(partial)
		brw.Flush()
		<-release
	}))
	t.Cleanup(func() { close(release) })
	h.route("sb1", Running, port)

	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: "+previewHost("sb1", port)+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	got := make([]byte, len(partial))
	if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, partial) {
		t.Fatalf("partial frame: %q, %v", got, err)
	}
	h.edge.CloseWebSockets()
	rest, err := io.ReadAll(br)
	if len(rest) != 0 || err != nil {
		t.Fatalf("after CloseWebSockets mid-frame: %d more bytes (%q), %v; want a plain close", len(rest), rest, err)
	}
}
