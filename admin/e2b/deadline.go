package e2b

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// E2B's timeout: a sandbox made here ends (is killed, or paused with autoPause) when its
// timeout passes, whatever its activity. The end is the sandbox's keepalive, so sandboxd's
// idle sleep leaves the sandbox alone until then and the end survives a restart of
// sandboxd; this file ends the sandbox when the end comes.
//
// A keepalive only moves forward, while E2B's set_timeout may bring the end closer. Such
// an end is held in memory (ends) and wins over the keepalive; after a restart of sandboxd
// the later keepalive is the end again. A sandbox woken by envd traffic after its end
// (E2B's auto-resume) gets its timeout again from then (woke).

// deadlines is the ends set in this run, and a poke for the sweeper when one changed.
type deadlines struct {
	mu   sync.Mutex
	ends map[string]time.Time
	poke chan struct{}
}

func (d *deadlines) init() {
	d.ends = map[string]time.Time{}
	d.poke = make(chan struct{}, 1)
}

// maxSweepWait is the longest the sweeper sleeps: it catches ends set behind its back
// (a keepalive through the admin API, say).
const maxSweepWait = time.Minute

// endOf is when sb ends: for a sandbox made here, its E2B end; for any other, when idle
// sleep would stop it at the earliest.
func (s *Server) endOf(sb store.Sandbox) time.Time {
	s.deadlines.mu.Lock()
	end, ok := s.deadlines.ends[sb.ID]
	s.deadlines.mu.Unlock()
	if ok {
		return end
	}
	if sb.Labels[labelManaged] == "1" || sb.KeepaliveUntil.After(sb.LastActiveAt) {
		return sb.KeepaliveUntil
	}
	idle := sb.IdleTimeout
	if idle == 0 {
		idle = 15 * time.Minute
	}
	return sb.LastActiveAt.Add(idle)
}

// setEnd makes end the end of sandbox id: the keepalive (forward only) and, when that is
// later, the end held in memory.
func (s *Server) setEnd(ctx context.Context, id string, end time.Time) error {
	if _, err := s.sandboxes.Keepalive(ctx, id, end); err != nil {
		return err
	}
	s.deadlines.mu.Lock()
	s.deadlines.ends[id] = end
	s.deadlines.mu.Unlock()
	select {
	case s.deadlines.poke <- struct{}{}:
	default:
	}
	return nil
}

func (s *Server) forgetEnd(id string) {
	s.deadlines.mu.Lock()
	delete(s.deadlines.ends, id)
	s.deadlines.mu.Unlock()
}

// timeoutOf is the timeout a sandbox was made with.
func timeoutOf(sb store.Sandbox) time.Duration {
	n, err := strconv.Atoi(sb.Labels[labelTimeout])
	if err != nil || n <= 0 {
		return 5 * time.Minute // the SDKs' default
	}
	return time.Duration(n) * time.Second
}

// woke is told by envd that its traffic woke sandbox id: a sandbox whose end has passed
// gets its timeout again, or the sweeper would end it at once.
func (s *Server) woke(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sb, err := s.sandboxes.Get(ctx, id)
	if err != nil || sb.Labels[labelManaged] != "1" {
		return
	}
	now := s.now()
	if s.endOf(sb).After(now) {
		return
	}
	if err := s.setEnd(ctx, id, now.Add(timeoutOf(sb))); err != nil {
		s.log.Warn("e2b: restart the timeout of a woken sandbox", "sandbox", id, "err", err)
	}
}

// runDeadlines ends sandboxes as their ends pass, until ctx ends.
func (s *Server) runDeadlines(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.deadlines.poke:
		}
		now := s.now()
		next := s.sweep(ctx, now)
		wait := maxSweepWait
		if !next.IsZero() {
			wait = min(max(next.Sub(now), 10*time.Millisecond), maxSweepWait)
		}
		timer.Reset(wait)
	}
}

// sweep ends every running sandbox made here whose end is not after now, and returns the
// next end to come (zero for none).
func (s *Server) sweep(ctx context.Context, now time.Time) (next time.Time) {
	o := store.ListOptions{Labels: map[string]string{labelManaged: "1"}, Status: store.StatusRunning, Limit: 500}
	seen := map[string]bool{}
	defer func() {
		// Ends of sandboxes that no longer run here (deleted, stopped) and have passed
		// are of no use: drop them, so the map does not grow with every sandbox made.
		s.deadlines.mu.Lock()
		for id, end := range s.deadlines.ends {
			if !seen[id] && !end.After(now) {
				delete(s.deadlines.ends, id)
			}
		}
		s.deadlines.mu.Unlock()
	}()
	for {
		page, err := s.sandboxes.List(ctx, o)
		if err != nil {
			s.log.Error("e2b: list sandboxes for their timeouts", "err", err)
			return now.Add(10 * time.Second)
		}
		for _, sb := range page {
			seen[sb.ID] = true
			end := s.endOf(sb)
			if end.After(now) {
				if next.IsZero() || end.Before(next) {
					next = end
				}
				continue
			}
			s.expire(ctx, sb)
		}
		if len(page) < o.Limit {
			return next
		}
		o.After = page[len(page)-1].ID
	}
}

// expire ends sb: paused when it was made with autoPause, else killed.
func (s *Server) expire(ctx context.Context, sb store.Sandbox) {
	action := "kill"
	var err error
	if sb.Labels[labelOnTimeout] == "pause" {
		action = "pause"
		err = s.pauser.Pause(ctx, sb.ID)
	} else {
		err = s.sandboxes.Purge(ctx, sb.ID)
	}
	if err != nil {
		s.log.Error("e2b: end a sandbox whose timeout passed", "sandbox", sb.ID, "action", action, "err", err)
		return
	}
	s.forgetEnd(sb.ID)
	s.log.Info("e2b: sandbox timeout passed", "sandbox", sb.ID, "action", action)
	s.record(ctx, Principal{Actor: "sandboxd"}, "sandbox.timeout."+action, sb.ID, "")
}
