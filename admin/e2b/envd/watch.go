package envd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/filesystem"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// A watch runs "sandbox-init fs watch" (inotify inside the sandbox) for as long as its
// stream or watcher lives, and turns each line into E2B's FilesystemEvents. Its events
// wait in a bounded queue: a stream that reads too slowly, or a watcher nobody drains, is
// ended with an error instead of holding ever more memory.

// maxQueuedEvents bounds the events a watch holds for its reader.
const maxQueuedEvents = 10000

// maxWatchLine caps one line of the helper (an event with its entry).
const maxWatchLine = 64 << 10

var errOverflow = connect.NewError(connect.CodeResourceExhausted,
	fmt.Errorf("more than %d events were not read in time: the watch stopped", maxQueuedEvents))

type watch struct {
	sandbox      string
	includeEntry bool
	cancel       context.CancelFunc
	ready        chan struct{} // holds a token when the queue went from empty to not
	done         chan struct{} // closed by finish
	started      chan error    // the helper's first line: nil, or why it refused

	mu        sync.Mutex
	begun     bool // the first line was read
	queue     []*filesystem.FilesystemEvent
	err       error // why it ended, unless asked to
	lineError error // what the reader of the helper's output failed on
}

// watchTable is every watch of a Handler: counted by sandbox, watchers by id.
type watchTable struct {
	mu       sync.Mutex
	perBox   map[string]int
	watchers map[string]*watch
}

func (t *watchTable) init() {
	t.perBox = map[string]int{}
	t.watchers = map[string]*watch{}
}

func (t *watchTable) release(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perBox[id]--; t.perBox[id] <= 0 {
		delete(t.perBox, id)
	}
}

// startWatch begins watching dir (a container path) in sandbox id. It returns once the
// helper watches, or with the error it refused with. The watch ends with Stop, with the
// sandbox, after timeout, or when Close is called.
func (h *Handler) startWatch(ctx context.Context, id, dir string, recursive, includeEntry bool, timeout time.Duration) (*watch, error) {
	if err := h.awake(ctx, id); err != nil {
		return nil, h.rpcError(err, "watch")
	}
	limit := h.MaxWatchers
	if limit <= 0 {
		limit = 16
	}
	h.watches.mu.Lock()
	if h.watches.perBox[id] >= limit {
		h.watches.mu.Unlock()
		return nil, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("sandbox %s has %d directory watches, the most it may have: stop one first", id, limit))
	}
	h.watches.perBox[id]++
	h.watches.mu.Unlock()

	if timeout <= 0 || timeout > lifecycle.MaxExecTimeout {
		timeout = lifecycle.MaxExecTimeout
	}
	wctx, cancel := context.WithCancel(h.base)
	w := &watch{sandbox: id, includeEntry: includeEntry, cancel: cancel,
		ready: make(chan struct{}, 1), done: make(chan struct{}), started: make(chan error, 1)}
	rec := "0"
	if recursive {
		rec = "1"
	}
	// The helper reads stdin until it ends: kept open while the watch lives, so a helper
	// whose sandboxd went away (and with it this pipe) ends by itself.
	req := lifecycle.ExecRequest{Cmd: []string{h.initPath(), "fs", "watch", dir, rec}, Timeout: timeout,
		Stdin: &blockingReader{done: wctx.Done()}}
	out := &lineSplitter{max: maxWatchLine, line: w.line}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer h.watches.release(id)
		// A container that died since the wake is woken again and the helper started once more.
		err := h.awakeFor(wctx, id, func() error {
			_, err := h.sandboxes.ExecStream(wctx, id, req, out, io.Discard)
			return err
		})
		stopped := wctx.Err() != nil
		cancel() // ends the stdin reader
		switch {
		case stopped:
			err = nil // asked to stop
		case w.failedLine() != nil:
			err = w.failedLine()
		case err == nil:
			err = connect.NewError(connect.CodeUnavailable, errors.New("the watch ended: the sandbox stopped, or the directory is gone"))
		default:
			err = h.rpcError(err, "watch")
		}
		w.finish(err)
	}()
	select {
	case err := <-w.started:
		if err != nil {
			cancel()
			return nil, err
		}
		return w, nil
	case <-w.done:
		if err := w.failure(); err != nil {
			return nil, err
		}
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("the watch ended before it began"))
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
}

// Stop ends the watch.
func (w *watch) Stop() { w.cancel() }

func (w *watch) finish(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	close(w.done)
}

func (w *watch) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *watch) failedLine() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lineError
}

// take removes and returns the queued events.
func (w *watch) take() []*filesystem.FilesystemEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// line takes one line of the helper: the first says whether it watches, the others are
// events. An error stops the helper (the exec's output copy fails).
func (w *watch) line(b []byte) error {
	w.mu.Lock()
	begun := w.begun
	w.begun = true
	w.mu.Unlock()
	if !begun {
		var r fsResult
		if err := json.Unmarshal(b, &r); err != nil {
			w.started <- connect.NewError(connect.CodeInternal, errors.New("watch: the sandbox's answer is not understood"))
			return err
		}
		if r.Error != nil {
			w.started <- fsError(r.Error.Kind, r.Error.Message)
			return errors.New("watch refused")
		}
		w.started <- nil
		return nil
	}
	var ev struct {
		Event struct {
			Name  string   `json:"name"`
			Ops   []string `json:"ops"`
			Entry *fsEntry `json:"entry"`
		} `json:"event"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return w.fail(connect.NewError(connect.CodeInternal, errors.New("watch: the sandbox's event is not understood")))
	}
	out := make([]*filesystem.FilesystemEvent, 0, len(ev.Event.Ops))
	for _, op := range ev.Event.Ops {
		fe := &filesystem.FilesystemEvent{Name: ev.Event.Name, Type: eventType(op)}
		if w.includeEntry && ev.Event.Entry != nil && (op == "create" || op == "write" || op == "chmod") {
			fe.Entry = entryInfo(*ev.Event.Entry, -1)
		}
		out = append(out, fe)
	}
	w.mu.Lock()
	if len(w.queue)+len(out) > maxQueuedEvents {
		w.mu.Unlock()
		return w.fail(errOverflow)
	}
	w.queue = append(w.queue, out...)
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default:
	}
	return nil
}

func (w *watch) fail(err error) error {
	w.mu.Lock()
	if w.lineError == nil {
		w.lineError = err
	}
	w.mu.Unlock()
	return err
}

func eventType(op string) filesystem.EventType {
	switch op {
	case "create":
		return filesystem.EventType_EVENT_TYPE_CREATE
	case "write":
		return filesystem.EventType_EVENT_TYPE_WRITE
	case "remove":
		return filesystem.EventType_EVENT_TYPE_REMOVE
	case "rename":
		return filesystem.EventType_EVENT_TYPE_RENAME
	case "chmod":
		return filesystem.EventType_EVENT_TYPE_CHMOD
	}
	return filesystem.EventType_EVENT_TYPE_UNSPECIFIED
}

// lineSplitter calls line for each complete line written to it.
type lineSplitter struct {
	buf  []byte
	max  int
	line func([]byte) error
}

func (s *lineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := indexByte(p, '\n')
		if i < 0 {
			if len(s.buf)+len(p) > s.max {
				return 0, errors.New("line too long")
			}
			s.buf = append(s.buf, p...)
			return n, nil
		}
		s.buf = append(s.buf, p[:i]...)
		p = p[i+1:]
		err := s.line(s.buf)
		s.buf = s.buf[:0]
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}
	return -1
}

// blockingReader is a stdin that gives nothing and ends (EOF) once done is closed.
type blockingReader struct{ done <-chan struct{} }

func (r *blockingReader) Read([]byte) (int, error) {
	<-r.done
	return 0, io.EOF
}
