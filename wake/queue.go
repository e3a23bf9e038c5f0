package wake

import "strconv"

// queue counts the Wake calls in flight, per sandbox and in all. Each one holds a goroutine
// and, at the edge, a client connection and its request: without a bound, a flood of
// requests to one sleeping sandbox piles up for the whole wake timeout (issue 11). It is
// guarded by Waker.mu.
type queue struct {
	byID  map[string]int
	total int
}

// enter counts a Wake call for id, or refuses it with a *CapacityError when id or the
// Waker has as many calls waiting as it may.
func (w *Waker) enter(id string) error {
	perID, all := orDefault(w.MaxWaitingPerSandbox, 256), orDefault(w.MaxWaiting, 4096)
	w.mu.Lock()
	defer w.mu.Unlock()
	q := &w.queue
	switch {
	case q.byID[id] >= perID:
		return &CapacityError{Reason: "too many requests waiting for sandbox " + id + " (" + strconv.Itoa(perID) + ")",
			RetryAfter: w.retryAfter()}
	case q.total >= all:
		return &CapacityError{Reason: "too many requests waiting for sandboxes (" + strconv.Itoa(all) + ")",
			RetryAfter: w.retryAfter()}
	}
	q.byID[id]++
	q.total++
	return nil
}

// leave uncounts a Wake call that enter counted.
func (w *Waker) leave(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := &w.queue
	if q.byID[id] <= 1 {
		delete(q.byID, id) // the map holds only sandboxes with callers: it cannot grow stale
	} else {
		q.byID[id]--
	}
	q.total--
}
