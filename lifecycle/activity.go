package lifecycle

import (
	"context"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// Activity is kept in memory and reaches SQLite in batches (flushActivity): the edge adds
// proxied bytes to a per-sandbox counter with one atomic add, and sampleActivity turns a
// changed counter into "active now". An exec or task in flight counts as activity for as
// long as it runs; a keepalive counts until its time.

// touch marks a sandbox active now.
func (m *Manager) touch(id string) {
	m.mu.RLock()
	l, ok := m.sandboxes[id]
	m.mu.RUnlock()
	if ok {
		l.lastActive.Store(m.now().UnixNano())
	}
}

// busy counts an exec or task in flight until done is called. While any is in flight the
// sandbox is active and neither reaper stops it.
func (m *Manager) busy(id string) (done func()) {
	m.mu.RLock()
	l, ok := m.sandboxes[id]
	m.mu.RUnlock()
	if !ok {
		return func() {}
	}
	l.inflight.Add(1)
	l.lastActive.Store(m.now().UnixNano())
	return func() {
		l.lastActive.Store(m.now().UnixNano())
		l.inflight.Add(-1)
	}
}

// Busy is busy for other packages' long work on a sandbox (tasks).
func (m *Manager) Busy(id string) (done func()) { return m.busy(id) }

// Keepalive keeps a sandbox awake until until (a zero until just marks it active now).
func (m *Manager) Keepalive(ctx context.Context, id string, until time.Time) (store.Sandbox, error) {
	sb, ok := m.cached(id)
	if !ok || !ValidID(id) {
		return store.Sandbox{}, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	now := m.now()
	if !until.IsZero() {
		if err := m.db.SetKeepalive(ctx, id, until, now); err != nil {
			return sb, internal(err, "record keepalive")
		}
		m.mu.RLock()
		if l, ok := m.sandboxes[id]; ok {
			l.extendKeepalive(until)                                   // forward only, like the row
			sb.KeepaliveUntil = time.Unix(0, l.keepalive.Load()).UTC() // the one in force
		}
		m.mu.RUnlock()
	}
	m.touch(id)
	sb.LastActiveAt = now
	m.overlay(&sb)
	return sb, nil
}

// sampleActivity marks active every running sandbox whose byte counter moved since the last
// sample, and every sandbox with work in flight. Bytes to a paused sandbox are a frozen
// WebSocket's client frames, which the kernel buffers: a page's background traffic, which
// wakes nothing (issue 14) and so is no activity either.
func (m *Manager) sampleActivity(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.sandboxes {
		b := l.bytes.Load()
		moved := b != l.seenBytes && l.sb.Status == store.StatusRunning
		l.seenBytes = b
		if moved || l.inflight.Load() > 0 {
			if now.UnixNano() > l.lastActive.Load() {
				l.lastActive.Store(now.UnixNano())
			}
		}
	}
}

// flushActivity writes every activity time that moved since the last flush, in one
// transaction.
func (m *Manager) flushActivity(ctx context.Context) error {
	batch := map[string]time.Time{}
	m.mu.Lock()
	for id, l := range m.sandboxes {
		if a := l.lastActive.Load(); a > l.flushed {
			batch[id] = time.Unix(0, a)
			l.flushed = a
		}
	}
	m.mu.Unlock()
	if err := m.db.TouchActive(ctx, batch); err != nil {
		return internal(err, "flush activity")
	}
	return nil
}

// lastActive is a sandbox's last activity from memory.
func (m *Manager) lastActive(id string) time.Time {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if l, ok := m.sandboxes[id]; ok {
		return time.Unix(0, l.lastActive.Load()).UTC()
	}
	return time.Time{}
}
