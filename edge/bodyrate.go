package edge

import (
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// A request body must keep a minimum transfer rate (issue 11: POST headers announcing a
// megabyte, then nothing, held a client connection, a goroutine and a backend connection
// each for as long as the client liked). The rule: MinRate×Window bytes must arrive within
// each Window, the first one starting at the first read of the body, each next one when
// the bytes due in the last one have arrived; a body that ends sooner is done. A large
// upload at any reasonable speed just keeps moving the deadline; a stalled one is cut at
// most Window after its last progress.
//
// The clock is the connection's read deadline (http.ResponseController), moved forward as
// bytes arrive: no goroutine or timer of our own per body, and a cut ends the read where
// it blocks.
const (
	defaultBodyMinRate = 1 << 10 // bytes per second
	defaultBodyWindow  = 10 * time.Second
)

// readDeadliner is the part of http.ResponseController that rateBody uses.
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// rateBody is a request body under the minimum rate. Its Read may be called by the
// Transport's goroutine while the handler's calls start and finish: everything but the
// read itself is under mu.
type rateBody struct {
	body     io.ReadCloser
	deadline readDeadliner
	due      int64 // bytes due per window
	window   time.Duration
	onCut    func() // may be nil

	mu    sync.Mutex
	armed bool  // the first window has started
	left  int64 // bytes still due in the current window
	over  bool  // at EOF, or the handler returned: the connection's deadline is not ours any more
	cut   bool  // a read hit the deadline
}

func newRateBody(body io.ReadCloser, d readDeadliner, minRate int, window time.Duration, onCut func()) *rateBody {
	due := max(int64(minRate)*int64(window/time.Millisecond)/1000, 1)
	return &rateBody{body: body, deadline: d, due: due, window: window, onCut: onCut}
}

func (b *rateBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.armed && !b.over {
		b.armLocked()
	}
	b.mu.Unlock()

	n, err := b.body.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.over {
		return n, err
	}
	if b.left -= int64(n); b.left <= 0 && n > 0 {
		b.left = b.due
		b.deadline.SetReadDeadline(time.Now().Add(b.window))
	}
	switch {
	case err == io.EOF:
		// Done: the connection's next reads (the server's check for a client gone, the
		// next request) must not inherit the deadline.
		b.over = true
		b.deadline.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded) && !b.cut:
		b.cut = true
		if b.onCut != nil {
			b.onCut()
		}
	}
	return n, err
}

func (b *rateBody) Close() error { return b.body.Close() }

// armLocked starts the first window.
func (b *rateBody) armLocked() {
	b.armed = true
	b.left = b.due
	b.deadline.SetReadDeadline(time.Now().Add(b.window))
}

// start starts the clock before the edge answers a request itself without reading its
// body: http.Server then reads up to 256 KiB of it to keep the connection, and that read
// must be bounded too.
func (b *rateBody) start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.armed && !b.over {
		b.armLocked()
	}
}

// finish is called as the handler returns: a body never read starts its clock (see
// start), and from then on the deadline belongs to the server, which sets the next
// request's.
func (b *rateBody) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.armed && !b.over {
		b.armLocked()
	}
	b.over = true
}

// wasCut reports whether the body was cut for being too slow.
func (b *rateBody) wasCut() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cut
}
