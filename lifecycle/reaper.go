package lifecycle

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// candidate is a running sandbox as the reapers see it.
type candidate struct {
	id         string
	idle       time.Duration
	timeout    time.Duration
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
		if l.sb.Status != store.StatusRunning {
			continue
		}
		last := time.Unix(0, l.lastActive.Load())
		timeout := l.sb.IdleTimeout
		if timeout == 0 {
			timeout = m.cfg.IdleTimeout
		}
		out = append(out, candidate{
			id: id, idle: now.Sub(last), timeout: timeout, lastActive: last,
			alwaysOn:  l.sb.IdlePolicy == store.IdleAlwaysOn,
			keepalive: l.keepalive.Load() > now.UnixNano(),
			inflight:  l.inflight.Load() > 0,
		})
	}
	return out
}

func (c candidate) idleTooLong() bool {
	return !c.alwaysOn && !c.keepalive && !c.inflight && c.idle > c.timeout
}

// IdleSweep is one pass of the idle reaper: it samples activity and stops every sandbox idle
// longer than its idle timeout. always_on sandboxes, those with an exec or task in flight
// and those kept alive are exempt. It returns the ids it stopped.
func (m *Manager) IdleSweep(ctx context.Context, now time.Time) []string {
	m.sampleActivity(now)
	var ids []string
	for _, c := range m.candidates(now) {
		if c.idleTooLong() {
			ids = append(ids, c.id)
		}
	}
	var mu sync.Mutex
	var stopped []string
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4) // docker stop takes seconds; a few at once
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ok, err := m.stopIf(ctx, id, "idle", func(c candidate) bool { return c.idleTooLong() }, now)
			if err != nil {
				m.log.Warn("idle stop", "sandbox", id, "err", err)
			}
			if ok {
				m.log.Info("stopped idle sandbox", "sandbox", id)
				mu.Lock()
				stopped = append(stopped, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return stopped
}

// PressureSweep is one pass of the memory-pressure reaper: when the host's MemAvailable is
// below the threshold it stops the least recently active sandbox. Sandboxes with an exec or
// task in flight are never stopped; kept-alive and always_on ones only when nothing else is
// left. One stop per pass: the next pass measures again. It returns the id it stopped.
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
		switch {
		case c.alwaysOn:
			return 2
		case c.keepalive:
			return 1
		}
		return 0
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
		ok, err := m.stopIf(ctx, c.id, "pressure", func(c candidate) bool { return !c.inflight }, now)
		if err != nil {
			m.log.Warn("pressure stop", "sandbox", c.id, "err", err)
			continue
		}
		if ok {
			m.log.Warn("stopped sandbox under memory pressure", "sandbox", c.id,
				"mem_available", avail, "threshold", m.cfg.PressureBelow, "idle", c.idle.Round(time.Second))
			return c.id
		}
	}
	return ""
}

// stopIf stops id if cond still holds once its lock is held: a request or exec that arrived
// since the sweep looked wins. The lock is kept from the check through the stop, so no
// operation slips in between; ok reports a stop that succeeded.
func (m *Manager) stopIf(ctx context.Context, id, reason string, cond func(candidate) bool, now time.Time) (bool, error) {
	unlock, ok := m.locks.tryLock(id)
	if !ok {
		return false, nil // busy with an operation: not idle
	}
	defer unlock()
	var still bool
	for _, c := range m.candidates(now) {
		if c.id == id {
			still = cond(c)
		}
	}
	if !still {
		return false, nil
	}
	// As locked does: a stop that began finishes even when the sweep's ctx ends.
	if err := m.stopLocked(context.WithoutCancel(ctx), id, reason); err != nil {
		return false, err
	}
	return true, nil
}
