package lifecycle

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/docker/docker/errdefs"
	"github.com/sandboxd/sandboxd/store"
)

// A container that dies without sandboxd asking (kill 1 inside, a crash of PID 1, the
// kernel's OOM killer) must be seen at once (issue 11: it stayed "running" until the
// 1-minute sweep, while previews answered 502 and exec 500). Docker 20.10 sends "die"
// before it records the container as exited, so a listing right after the event can
// still say running: settle asks again until the engine agrees, a bounded number of
// times. The reconcile that follows marks the sandbox stopped (the edge then wakes it like
// any sleeping sandbox) and records how it ended in last_exit.

// ErrNotRunning is wrapped by the error of an operation that found the sandbox's container
// no longer running although the sandbox was: the state is settled when it returns, so a
// caller may wake the sandbox and try once more.
var ErrNotRunning = errors.New("the sandbox's container is not running")

// Settling a death: how often and how long the engine is asked again.
const (
	settleEvery = 50 * time.Millisecond
	settleFor   = 3 * time.Second
)

// deaths remembers, per sandbox, the last die event not yet settled and, per container,
// the OOM kills the engine reported. Both are small: an entry lives from an event to the
// reconcile it kicks, and the OOM table is cleared past maxOOMs.
type deaths struct {
	mu   sync.Mutex
	died map[string]death     // sandbox id → its last die event
	ooms map[string]time.Time // container id → its last OOM kill
}

type death struct {
	container string
	at        time.Time
}

const maxOOMs = 1024

func (d *deaths) noteDie(id, cid string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.died == nil {
		d.died = map[string]death{}
	}
	d.died[id] = death{cid, at}
}

func (d *deaths) takeDie(id string) (death, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.died[id]
	delete(d.died, id)
	return e, ok
}

func (d *deaths) noteOOM(cid string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ooms == nil || len(d.ooms) >= maxOOMs {
		d.ooms = map[string]time.Time{}
	}
	d.ooms[cid] = at
}

// takeOOM reports (and forgets) an OOM kill of cid since its start.
func (d *deaths) takeOOM(cid string, since time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.ooms[cid]
	delete(d.ooms, cid)
	return ok && !at.Before(since)
}

// settle waits until the engine no longer says cid runs, or says it started again after
// it died at died, or settleFor passes. Inspect takes the container's lock in dockerd,
// which the exit holds until the state is recorded, so the first answer is nearly always
// the settled one.
func (m *Manager) settle(ctx context.Context, cid string, died time.Time) {
	deadline := time.Now().Add(settleFor)
	for {
		st, err := m.inspectState(ctx, cid)
		if err != nil || !st.Running || st.StartedAt.After(died) {
			return
		}
		if time.Now().After(deadline) {
			m.log.Warn("container still running after its die event", "container", shortID(cid))
			return
		}
		select {
		case <-time.After(settleEvery):
		case <-ctx.Done():
			return
		}
	}
}

// settleAndReconcile settles the sandbox's last death, if one was reported, and
// reconciles it.
func (m *Manager) settleAndReconcile(ctx context.Context, id string) error {
	if d, ok := m.deaths.takeDie(id); ok {
		m.settle(ctx, d.container, d.at)
	}
	return m.reconcileID(ctx, id)
}

// recordExit stores how sb's container ended on its own (reconcile found it stopped while
// the row said running) and sets it on sb.
func (m *Manager) recordExit(ctx context.Context, sb *store.Sandbox, cid string) {
	if cid == "" {
		return // removed behind sandboxd's back: there is no exit to tell
	}
	st, err := m.inspectState(ctx, cid)
	if err != nil {
		m.log.Warn("read how a container ended", "sandbox", sb.ID, "err", err)
		return
	}
	e := store.Exit{Code: st.ExitCode, Reason: store.ExitExited, At: st.FinishedAt}
	// An oom event (or the engine's OOMKilled flag, for a death sandboxd did not watch) says
	// the kernel killed some process of the container, PID 1's or a child's; with the code of
	// a SIGKILL, the container went down with it.
	sawOOM := m.deaths.takeOOM(cid, st.StartedAt)
	if (sawOOM || st.OOMKilled) && st.ExitCode == 137 {
		e.Reason = store.ExitOOM
	}
	if e.At.IsZero() {
		e.At = m.now()
	}
	if err := m.db.SetLastExit(ctx, sb.ID, e); err != nil {
		m.log.Error("record how a container ended", "sandbox", sb.ID, "err", err)
		return
	}
	sb.LastExit = e
	m.log.Warn("sandbox's container ended on its own", "sandbox", sb.ID, "code", e.Code, "reason", e.Reason)
}

// execFailed turns the error of creating an exec into the caller's: a container that is not
// running although the sandbox was has died under it, so the state is settled first and
// the error wraps ErrNotRunning.
func (m *Manager) execFailed(ctx context.Context, id, cid string, err error) error {
	if !errdefs.IsConflict(err) { // the engine's answer to an exec in a stopped container
		return internal(err, "create exec in %s", id)
	}
	// ... and in a paused one (issue 14: paused since the caller woke it, by the API or
	// behind sandboxd's back). Nothing died: once reconcile records the pause, the caller's
	// wake unpauses it.
	if st, ierr := m.inspectState(ctx, cid); ierr == nil && st.Paused {
		if rerr := m.reconcileID(context.WithoutCancel(ctx), id); rerr != nil {
			m.log.Warn("reconcile a sandbox found paused", "sandbox", id, "err", rerr)
		}
		return &Error{Code: CodeConflict, Message: "sandbox " + id + " is paused: wake it first", Err: ErrNotRunning}
	}
	m.deaths.noteDie(id, cid, m.now())
	if rerr := m.settleAndReconcile(context.WithoutCancel(ctx), id); rerr != nil {
		m.log.Warn("reconcile a sandbox found dead", "sandbox", id, "err", rerr)
	}
	return &Error{Code: CodeConflict, Message: "sandbox " + id + " stopped: its container ended; start it again", Err: ErrNotRunning}
}
