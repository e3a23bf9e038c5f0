package task

import "sync"

// hub tells waiting readers that a task has new events. A reader takes the channel of the
// moment, reads the store, and waits on the channel; notify closes it. Entries exist only
// while someone waits, so the map does not grow with every task ever run.
type hub struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
}

func (h *hub) wait(id string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.chans == nil {
		h.chans = map[string]chan struct{}{}
	}
	ch, ok := h.chans[id]
	if !ok {
		ch = make(chan struct{})
		h.chans[id] = ch
	}
	return ch
}

func (h *hub) notify(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.chans[id]; ok {
		close(ch)
		delete(h.chans, id)
	}
}
