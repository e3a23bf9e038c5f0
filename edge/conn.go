package edge

import (
	"io"
	"log"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// backendConn is a connection to a sandbox: it adds every byte read or
// written to n, when set, and its first Close gives its backend place back
// to slots, when set. The Transport reads and writes its connections
// through bufio, and upgraded connections are copied by upgradedConn's
// ReadFrom and WriteTo, so plain Read and Write are all a backend
// connection needs: there is no sendfile or splice fast path to keep.
type backendConn struct {
	net.Conn
	n     *atomic.Int64
	slots *atomic.Int64
	once  sync.Once
}

func (c *backendConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.n != nil {
		c.n.Add(int64(n))
	}
	return n, err
}

func (c *backendConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 && c.n != nil {
		c.n.Add(int64(n))
	}
	return n, err
}

func (c *backendConn) Close() error {
	err := c.Conn.Close()
	if c.slots != nil {
		c.once.Do(func() { c.slots.Add(-1) })
	}
	return err
}

// Buffer sizes for upgraded connections. An idle WebSocket spends most of
// its life blocked in Read, holding whatever buffer it reads into; io.Copy
// would hold 32 KiB per direction. A copy holds a small buffer and borrows
// a large one only while reads keep filling the small one.
const (
	smallCopyBuffer = 2 << 10
	largeCopyBuffer = 32 << 10
)

// copyPool lends the large buffers of copyAdaptive.
type copyPool struct{ p sync.Pool }

func (cp *copyPool) get() *[]byte {
	if v, ok := cp.p.Get().(*[]byte); ok {
		return v
	}
	b := make([]byte, largeCopyBuffer)
	return &b
}

func (cp *copyPool) put(b *[]byte) { cp.p.Put(b) }

// copyAdaptive is io.Copy with a small resting buffer: it reads into small
// until a read fills it, then into a borrowed large buffer until a read
// does not, and gives the large buffer back.
func copyAdaptive(dst io.Writer, src io.Reader, pool *copyPool) (written int64, err error) {
	small := make([]byte, smallCopyBuffer)
	var large *[]byte
	defer func() {
		if large != nil {
			pool.put(large)
		}
	}()
	for {
		buf := small
		if large != nil {
			buf = *large
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			m, werr := dst.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, werr
			}
			if m != n {
				return written, io.ErrShortWrite
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return written, nil
			}
			return written, rerr
		}
		switch {
		case n == len(buf) && large == nil:
			large = pool.get()
		case n < len(buf) && large != nil:
			pool.put(large)
			large = nil
		}
	}
}

// slogDebugLogger adapts l for APIs that want a *log.Logger, at debug level.
func slogDebugLogger(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelDebug)
}
