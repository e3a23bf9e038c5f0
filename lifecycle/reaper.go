package lifecycle

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// candidate is a running or paused sandbox as the reapers see it.
type candidate struct {
	id         string
	paused     bool
	idle       time.Duration // since its last activity
	timeout    time.Duration // its idle timeout
	pausedFor  time.Duration // since it was paused, when paused
	stopAfter  time.Duration // its stop_after; 0: no pause tier
	alwaysOn   bool
	keepalive  bool
	inflight   bool
	lastActive time.Time
}

func (m *Manager) candidates(now time.Time) []candidate {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []candidate
	for id, l := range m.sandboxes {
		if !alive(l.sb.Status) {
			continue
		}
		last := time.Unix(0, l.lastActive.Load())
		c := candidate{
			id: id, paused: l.sb.Status == store.StatusPaused, idle: now.Sub(last), lastActive: last,
			timeout: l.sb.IdleTimeout, stopAfter: l.sb.StopAfter,
			alwaysOn:  l.sb.IdlePolicy == store.IdleAlwaysOn,
			keepalive: l.keepalive.Load() > now.UnixNano(),
			inflight:  l.inflight.Load() > 0,
		}
		if c.timeout == 0 {
			c.timeout = m.cfg.IdleTimeout
		}
		if c.stopAfter == 0 {
			c.stopAfter = m.cfg.StopAfter
		}
		if c.paused {
			c.pausedFor = now.Sub(l.sb.PausedAt)
		}
		out = append(out, c)
	}
	return out
}

// exempt: always_on, kept alive, or with an exec or task in flight.
func (c candidate) exempt() bool { return c.alwaysOn || c.keepalive || c.inflight }

// idleTooLong reports a running sandbox idle past its idle timeout: time to sleep.
func (c candidate) idleTooLong() bool { return !c.paused && !c.exempt() && c.idle > c.timeout }

// pausedTooLong reports a paused sandbox paused past its stop_after: time to stop. Without
// a pause tier (stop_after 0) a sandbox paused through the API stays paused.
func (c candidate) pausedTooLong() bool {
	return c.paused && c.stopAfter > 0 && !c.exempt() && c.pausedFor > c.stopAfter
}

// Swept is what one pass of the idle reaper did.
type Swept struct {
	Paused  []string // running sandboxes idle past their timeout, now paused
	Stopped []string // paused past their stop_after, or idle without a pause tier, now stopped
}

// IdleSweep is one pass of the idle reaper. It samples activity; pauses every running
// sandbox idle longer than its idle timeout (stops it, when its stop_after is 0 or the pause
// fails); and stops every sandbox paused longer than its stop_after. always_on sandboxes,
// those with an exec or task in flight and those kept alive are exempt.
func (m *Manager) IdleSweep(ctx context.Context, now time.Time) Swept {
	m.sampleActivity(now)
	var work []candidate
	for _, c := range m.candidates(now) {
		if c.idleTooLong() || c.pausedTooLong() {
			work = append(work, c)
		}
	}
	var mu sync.Mutex
	var out Swept
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4) // docker stop takes seconds; a few at once
	for _, c := range work {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if c.paused {
				ok, err := m.actIf(ctx, c.id, candidate.pausedTooLong, now, func(ctx context.Context, _ candidate) error {
					return m.stopLocked(ctx, c.id, "stop_after")
				})
				if err != nil {
					m.log.Warn("stop paused sandbox", "sandbox", c.id, "err", err)
				}
				if ok {
					m.log.Info("stopped sandbox paused past its stop_after", "sandbox", c.id, "paused_for", c.pausedFor.Round(time.Second))
					mu.Lock()
					out.Stopped = append(out.Stopped, c.id)
					mu.Unlock()
				}
				return
			}
			paused := false
			ok, err := m.actIf(ctx, c.id, candidate.idleTooLong, now, func(ctx context.Context, c candidate) error {
				if c.stopAfter > 0 {
					err := m.pauseLocked(ctx, c.id, "idle")
					if err == nil {
						paused = true
						return nil
					}
					m.log.Warn("pause idle sandbox failed; stopping it instead", "sandbox", c.id, "err", err)
				}
				return m.stopLocked(ctx, c.id, "idle")
			})
			if err != nil {
				m.log.Warn("idle sleep", "sandbox", c.id, "err", err)
			}
			if ok {
				mu.Lock()
				if paused {
					m.log.Info("paused idle sandbox", "sandbox", c.id)
					out.Paused = append(out.Paused, c.id)
				} else {
					m.log.Info("stopped idle sandbox", "sandbox", c.id)
					out.Stopped = append(out.Stopped, c.id)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// PressureSweep is one pass of the memory-pressure reaper: when the host's MemAvailable is
// below the threshold it stops one sandbox. Paused sandboxes go first (their memory is held
// for nothing running), least recently active first; then running ones, least recently
// active first. Sandboxes with an exec or task in flight are never stopped; kept-alive and
// always_on ones only after the others of their tier. One stop per pass: the next pass
// measures again. It returns the id it stopped.
func (m *Manager) PressureSweep(ctx context.Context, now time.Time) string {
	if m.cfg.PressureBelow == 0 || m.MemAvailable == nil {
		return ""
	}
	avail, err := m.MemAvailable()
	if err != nil {
		m.log.Warn("read MemAvailable", "err", err)
		return ""
	}
	if avail >= m.cfg.PressureBelow {
		return ""
	}
	m.sampleActivity(now)
	list := m.candidates(now)
	tier := func(c candidate) int {
		t := 0
		if !c.paused {
			t = 3
		}
		switch {
		case c.alwaysOn:
			return t + 2
		case c.keepalive:
			return t + 1
		}
		return t
	}
	sort.Slice(list, func(i, j int) bool {
		if ti, tj := tier(list[i]), tier(list[j]); ti != tj {
			return ti < tj
		}
		return list[i].lastActive.Before(list[j].lastActive)
	})
	for _, c := range list {
		if c.inflight {
			continue
		}
		ok, err := m.actIf(ctx, c.id, func(c candidate) bool { return !c.inflight }, now, func(ctx context.Context, _ candidate) error {
			return m.stopLocked(ctx, c.id, "pressure")
		})
		if err != nil {
			m.log.Warn("pressure stop", "sandbox", c.id, "err", err)
			continue
		}
		if ok {
			m.log.Warn("stopped sandbox under memory pressure", "sandbox", c.id, "paused", c.paused,
				"mem_available", avail, "threshold", m.cfg.PressureBelow, "idle", c.idle.Round(time.Second))
			return c.id
		}
	}
	return ""
}

// actIf runs act on id if cond still holds once its lock is held: a request or exec that
// arrived since the sweep looked wins. The lock is kept from the check through act, so no
// operation slips in between; ok reports an act that succeeded.
func (m *Manager) actIf(ctx context.Context, id string, cond func(candidate) bool, now time.Time, act func(context.Context, candidate) error) (bool, error) {
	unlock, ok := m.locks.tryLock(id)
	if !ok {
		return false, nil // busy with an operation: not idle
	}
	defer unlock()
	var c candidate
	var found bool
	for _, cc := range m.candidates(now) {
		if cc.id == id {
			c, found = cc, true
		}
	}
	if !found || !cond(c) {
		return false, nil
	}
	// As locked does: an operation that began finishes even when the sweep's ctx ends.
	if err := act(context.WithoutCancel(ctx), c); err != nil {
		return false, err
	}
	return true, nil
}
