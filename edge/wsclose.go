package edge

import (
	"encoding/binary"
	"net"
	"time"
)

// goingAwayFrame is the Close frame the edge sends a WebSocket client when sandboxd stops:
// status 1001 (Going Away, RFC 6455 §7.4.1), so that the page sees a clean close it can
// reconnect after rather than an abnormal one (1006). Unmasked: it comes from the server.
var goingAwayFrame = func() []byte {
	reason := "sandboxd is restarting"
	f := []byte{0x88, byte(2 + len(reason)), 0x03, 0xe9} // FIN+Close, length, 1001
	return append(f, reason...)
}()

// goingAwayTimeout bounds the wait for a frame being written to the client to finish, and
// the write of the Close frame itself, at shutdown: a client that stops reading does not
// hold the process.
const goingAwayTimeout = time.Second

// wsFrames follows the frame boundaries of the app→client side of a WebSocket (RFC 6455
// §5.2) by counting, without buffering any payload: the edge may add a frame of its own
// only between two of the app's. Control frames may come between the fragments of a
// message, so a frame boundary is enough.
type wsFrames struct {
	hdr  [14]byte // the header being read: 2 bytes, up to 8 of length, 4 of mask
	n    int      // bytes of hdr read so far
	left uint64   // payload bytes of the current frame still to come
}

// feed accounts for p, the next bytes of the stream.
func (f *wsFrames) feed(p []byte) {
	for len(p) > 0 {
		if f.left > 0 {
			k := min(uint64(len(p)), f.left)
			f.left -= k
			p = p[k:]
			continue
		}
		f.hdr[f.n] = p[0]
		f.n++
		p = p[1:]
		if f.n < 2 {
			continue
		}
		size, lenBytes := 2, 0
		switch f.hdr[1] & 0x7f {
		case 126:
			lenBytes = 2
		case 127:
			lenBytes = 8
		}
		size += lenBytes
		if f.hdr[1]&0x80 != 0 { // masked (a client frame; an app should not send one)
			size += 4
		}
		if f.n < size {
			continue
		}
		switch lenBytes {
		case 0:
			f.left = uint64(f.hdr[1] & 0x7f)
		case 2:
			f.left = uint64(binary.BigEndian.Uint16(f.hdr[2:4]))
		case 8:
			f.left = binary.BigEndian.Uint64(f.hdr[2:10])
		}
		f.n = 0
	}
}

// boundary reports whether the stream is between two frames.
func (f *wsFrames) boundary() bool { return f.n == 0 && f.left == 0 }

// wsClientWriter is the client side of an upgraded WebSocket as the app→client copy sees
// it: each write is accounted in frames, under wmu, and refused once goingAway ran.
type wsClientWriter upgradedConn

func (w *wsClientWriter) Write(p []byte) (int, error) {
	c := (*upgradedConn)(w)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.goneAway {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Write(p)
	c.frames.feed(p[:n])
	return n, err
}

// goingAway ends the app→client side with a Close frame (1001) when the app is between
// frames; in the middle of one (a frame partly sent, the rest not yet read from the app),
// it sends nothing, since bytes added there would corrupt the stream, and the caller's
// Close ends the connection without a handshake, as before. A write in progress gets
// goingAwayTimeout to finish first. The client's answering Close frame is not waited for.
func (c *upgradedConn) goingAway() {
	c.Conn.SetWriteDeadline(time.Now().Add(goingAwayTimeout))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.goneAway && c.frames.boundary() {
		c.Conn.Write(goingAwayFrame)
	}
	c.goneAway = true
}
