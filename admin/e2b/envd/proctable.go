package envd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/sandboxd/sandboxd/admin/e2b/spec/envd/process"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// The process table: every process envd started, per sandbox, held in memory. A process
// runs on a context of the Handler's, not of the request that started it, so it outlives
// its client (E2B's background commands); its output goes to whoever is connected to it
// at the time (Start's stream, then any Connect), and is dropped while nobody is, as E2B's
// envd does. Every subscriber has a bounded queue; one that does not take its output for
// slowSubscriber is cut off, so a stalled client never stalls the process for long nor
// makes sandboxd hold its output. Subscribers share the events, so a process holds at most
// subscriberQueue × outputChunk (512 KiB) of output however many streams follow it.

const (
	defaultMaxProcesses = 64
	maxSubscribers      = 8                // connected streams per process
	subscriberQueue     = 64               // events (each at most outputChunk bytes) queued per subscriber
	outputChunk         = 32 << 10         // largest data event
	slowSubscriber      = 30 * time.Second // a full queue waits this long before its subscriber is cut off
	keptEnded           = 32               // ended processes a sandbox remembers for a late Connect
)

// proc is one process.
type proc struct {
	pid    uint32
	tag    *string
	config *process.ProcessConfig
	pty    bool
	stdin  io.WriteCloser     // the pipe to a non-PTY process's stdin, when it has one
	term   lifecycle.Terminal // the PTY, when it is one
	kill   context.CancelFunc
	done   chan struct{} // closed once end is set and every subscriber was told

	mu   sync.Mutex
	subs map[*subscriber]struct{}
	end  *process.ProcessEvent_EndEvent
}

// subscriber is one stream taking a process's events.
type subscriber struct {
	events chan *process.ProcessEvent
	cut    chan struct{} // closed when it was cut off for being slow
	left   chan struct{} // closed when its stream ended: publish stops waiting for it
}

// sandboxProcs is one sandbox's processes.
type sandboxProcs struct {
	nextPID uint32
	live    map[uint32]*proc
	ended   []*proc // the last keptEnded that ended, oldest first
}

type procTable struct {
	mu    sync.Mutex
	boxes map[string]*sandboxProcs
}

func (t *procTable) init() { t.boxes = map[string]*sandboxProcs{} }

// add registers a new process of sandbox id and gives it a pid, unless the sandbox has
// limit processes running.
func (t *procTable) add(id string, p *proc, limit int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.boxes[id]
	if b == nil {
		b = &sandboxProcs{nextPID: 1000, live: map[uint32]*proc{}}
		t.boxes[id] = b
	}
	if len(b.live) >= limit {
		return connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("sandbox %s runs %d processes, the most envd may start: wait for one to end or kill one", id, limit))
	}
	for b.live[b.nextPID] != nil || b.nextPID == 0 {
		b.nextPID++
	}
	p.pid = b.nextPID
	b.nextPID++
	b.live[p.pid] = p
	return nil
}

// ended moves p to the sandbox's ended processes, dropping the oldest beyond the bound,
// and forgets a sandbox with nothing left.
func (t *procTable) ended(id string, p *proc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.boxes[id]
	if b == nil {
		return
	}
	delete(b.live, p.pid)
	b.ended = append(b.ended, p)
	if len(b.ended) > keptEnded {
		b.ended = append(b.ended[:0], b.ended[len(b.ended)-keptEnded:]...)
	}
}

// prune forgets the ended processes of sandboxes that run none and are no longer running
// (stopped or deleted): the table must not keep every sandbox that ever ran a command.
func (t *procTable) prune(running func(id string) (netip.Addr, bool)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, b := range t.boxes {
		if len(b.live) == 0 {
			if _, ok := running(id); !ok {
				delete(t.boxes, id)
			}
		}
	}
}

// find returns the process a selector names: a running one first, else one that ended
// (its end is still told to a late Connect).
func (t *procTable) find(id string, sel *process.ProcessSelector) (*proc, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.boxes[id]
	match := func(p *proc) bool {
		switch s := sel.GetSelector().(type) {
		case *process.ProcessSelector_Pid:
			return p.pid == s.Pid
		case *process.ProcessSelector_Tag:
			return p.tag != nil && *p.tag == s.Tag
		}
		return false
	}
	if b != nil {
		for _, p := range b.live {
			if match(p) {
				return p, nil
			}
		}
		for i := len(b.ended) - 1; i >= 0; i-- {
			if match(b.ended[i]) {
				return b.ended[i], nil
			}
		}
	}
	switch s := sel.GetSelector().(type) {
	case *process.ProcessSelector_Pid:
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("process with pid %d not found", s.Pid))
	case *process.ProcessSelector_Tag:
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("process with tag %s not found", s.Tag))
	}
	return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("process selector must name a pid or a tag"))
}

// list returns sandbox id's running processes.
func (t *procTable) list(id string) []*proc {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*proc
	if b := t.boxes[id]; b != nil {
		for _, p := range b.live {
			out = append(out, p)
		}
	}
	return out
}

// subscribe connects a stream to p. It fails once p has maxSubscribers; a process that has
// ended gives a subscriber that only learns the end.
func (p *proc) subscribe() (*subscriber, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.subs) >= maxSubscribers {
		return nil, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("process %d has %d streams connected, the most it may have", p.pid, maxSubscribers))
	}
	s := &subscriber{events: make(chan *process.ProcessEvent, subscriberQueue), cut: make(chan struct{}), left: make(chan struct{})}
	if p.end == nil {
		p.subs[s] = struct{}{}
	}
	return s, nil
}

// unsubscribe ends s; call it once, when its stream ends.
func (p *proc) unsubscribe(s *subscriber) {
	p.mu.Lock()
	delete(p.subs, s)
	p.mu.Unlock()
	close(s.left)
}

// publish gives ev to every subscriber, waiting up to slowSubscriber (in all) for full
// queues before cutting their subscribers off. It is called from one goroutine per
// process.
func (p *proc) publish(ev *process.ProcessEvent) {
	p.mu.Lock()
	subs := make([]*subscriber, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	var deadline time.Time
	for _, s := range subs {
		select {
		case s.events <- ev:
			continue
		case <-s.left:
			continue
		default:
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(slowSubscriber)
		}
		timer := time.NewTimer(time.Until(deadline))
		select {
		case s.events <- ev:
		case <-s.left:
		case <-timer.C:
			p.mu.Lock()
			if _, ok := p.subs[s]; ok {
				delete(p.subs, s)
				close(s.cut)
			}
			p.mu.Unlock()
		}
		timer.Stop()
	}
}

// finish records how p ended; its subscribers learn it after the output already queued.
func (p *proc) finish(end *process.ProcessEvent_EndEvent) {
	p.mu.Lock()
	p.end = end
	p.subs = nil
	p.mu.Unlock()
	close(p.done)
}

func (p *proc) ending() *process.ProcessEvent_EndEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.end
}

func (p *proc) info() *process.ProcessInfo {
	return &process.ProcessInfo{Pid: p.pid, Tag: p.tag, Config: p.config}
}

// output is the io.Writer a process's stdout, stderr or PTY writes to: it cuts the bytes
// into data events and publishes them.
type output struct {
	p    *proc
	kind int // 1 stdout, 2 stderr, 3 pty
}

func (o output) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		c := b[:min(len(b), outputChunk)]
		b = b[len(c):]
		data := append([]byte(nil), c...)
		ev := &process.ProcessEvent_DataEvent{}
		switch o.kind {
		case 1:
			ev.Output = &process.ProcessEvent_DataEvent_Stdout{Stdout: data}
		case 2:
			ev.Output = &process.ProcessEvent_DataEvent_Stderr{Stderr: data}
		default:
			ev.Output = &process.ProcessEvent_DataEvent_Pty{Pty: data}
		}
		o.p.publish(&process.ProcessEvent{Event: &process.ProcessEvent_Data{Data: ev}})
	}
	return n, nil
}
