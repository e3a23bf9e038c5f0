package lifecycle

import (
	"context"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
)

// Docker 20.10 records a pause twice: when its pause call returns, and again when
// containerd's "paused" event reaches its monitor. After a quick freeze and thaw (a
// snapshot's, issue 18) that event may come after the thaw, and the engine then shows the
// container paused, and refuses execs, until the matching "resumed" event follows a moment
// later. An exec refused in that window is tried again once the engine agrees the
// container runs; only after a thaw of sandboxd's own, so a pause behind its back is still
// answered at once.
const (
	thawSettle = 3 * time.Second       // how long after a thaw the engine may still say paused
	thawPoll   = 20 * time.Millisecond // the pace of asking it again
	maxThaws   = 1024                  // thaws remembered at once (they expire after thawSettle)
)

// thaws remembers sandboxd's recent thaws by container id.
type thaws struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (t *thaws) note(cid string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.at == nil || len(t.at) >= maxThaws {
		t.at = map[string]time.Time{}
	}
	t.at[cid] = now
}

func (t *thaws) recent(cid string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.at[cid]
	if ok && now.Sub(at) > thawSettle {
		delete(t.at, cid)
		return false
	}
	return ok
}

// createExec creates an exec in sandbox id's container cid; a refusal is turned into the
// caller's error by execFailed.
func (m *Manager) createExec(ctx context.Context, id, cid string, opts container.ExecOptions) (string, error) {
	created, err := m.docker.ContainerExecCreate(ctx, cid, opts)
	if err != nil && errdefs.IsConflict(err) && m.thaws.recent(cid, m.now()) && m.waitThawed(ctx, cid) {
		created, err = m.docker.ContainerExecCreate(ctx, cid, opts)
	}
	if err != nil {
		return "", m.execFailed(ctx, id, cid, err)
	}
	return created.ID, nil
}

// waitThawed asks the engine until it shows cid not paused, for thawSettle at most.
func (m *Manager) waitThawed(ctx context.Context, cid string) bool {
	deadline := time.Now().Add(thawSettle)
	for {
		st, err := m.inspectState(ctx, cid)
		if err != nil || !st.Running {
			return false // gone or stopped: execFailed settles that
		}
		if !st.Paused {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-time.After(thawPoll): // polling the engine, not ordering
		case <-ctx.Done():
			return false
		}
	}
}
