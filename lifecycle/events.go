package lifecycle

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// watchEvents follows the engine's container events (start, die, oom, destroy, pause,
// unpause) for this instance and reconciles the sandbox each one names, so a container that
// crashed, was OOM-killed, paused, unpaused or removed behind sandboxd's back is seen at
// once. After any break in the stream it reconciles everything, since events may have been
// missed.
func (m *Manager) watchEvents(ctx context.Context) error {
	var kicks kicker
	defer kicks.wait()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		// The client subscribes in the background; Since makes the engine replay what
		// happens between now and the moment the subscription lands, which the
		// reconcile below may already have read past.
		now := time.Now()
		msgs, errs := m.docker.Events(sctx, events.ListOptions{Since: fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond()), Filters: filters.NewArgs(
			filters.Arg("type", "container"),
			filters.Arg("label", LabelInstance+"="+m.instance),
			filters.Arg("event", "start"), filters.Arg("event", "die"),
			filters.Arg("event", "oom"), filters.Arg("event", "destroy"),
			filters.Arg("event", "pause"), filters.Arg("event", "unpause"), // issue 14: behind our back too
		)})
		if err := m.reconcileAll(ctx, false); err != nil && ctx.Err() == nil {
			m.log.Warn("reconcile after subscribing to events", "err", err)
		}
		err := m.consumeEvents(ctx, msgs, errs, &kicks)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		m.log.Warn("docker events stream broke; resubscribing", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	return nil
}

func (m *Manager) consumeEvents(ctx context.Context, msgs <-chan events.Message, errs <-chan error, kicks *kicker) error {
	for {
		select {
		case msg := <-msgs:
			id := msg.Actor.Attributes[LabelID]
			if !ValidID(id) {
				continue
			}
			at := time.Unix(0, msg.TimeNano)
			switch msg.Action {
			case events.ActionOOM:
				m.log.Warn("sandbox ran out of memory", "sandbox", id)
				m.deaths.noteOOM(msg.Actor.ID, at)
			case events.ActionDie:
				m.deaths.noteDie(id, msg.Actor.ID, at)
			}
			kicks.kick(id, func() {
				if err := m.settleAndReconcile(ctx, id); err != nil && ctx.Err() == nil {
					m.log.Warn("reconcile after event", "sandbox", id, "event", msg.Action, "err", err)
				}
			})
		case err := <-errs:
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

// kicker runs at most one pending reconcile per sandbox: a burst of events for one sandbox
// costs one pass (plus the one already running), and every goroutine is joined by wait.
type kicker struct {
	mu      sync.Mutex
	pending map[string]bool
	wg      sync.WaitGroup
}

func (k *kicker) kick(id string, fn func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pending == nil {
		k.pending = map[string]bool{}
	}
	if k.pending[id] {
		return
	}
	k.pending[id] = true
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		k.mu.Lock()
		delete(k.pending, id) // events after this point kick a new pass
		k.mu.Unlock()
		fn()
	}()
}

func (k *kicker) wait() { k.wg.Wait() }
