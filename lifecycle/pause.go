package lifecycle

import (
	"context"
	"net/netip"
	"time"

	"github.com/docker/docker/errdefs"
	"github.com/sandboxd/sandboxd/store"
)

// Tiered sleep (issue 14). An idle sandbox is first paused: the cgroup freezer stops its
// processes where they are, keeping their memory and open sockets, and frees the CPU. A wake
// unpauses it in milliseconds, and the request is answered by the same process with its
// state intact. A sandbox paused longer than its stop_after, or paused while the host runs
// short of memory, is stopped (reaper.go). Exec, terminal, tasks and keepalive go through
// the waker to Start, which unpauses; the files API works on the host and leaves it paused.
//
// A WebSocket open to a paused sandbox stays open, frozen with the app: the page's
// live-reload client sees nothing and does not reconnect. A stop closes it, and the
// reconnect that follows is a background request that does not wake the sandbox.

// Pause freezes a running sandbox. Pausing a paused sandbox is a no-op; any other state is
// a conflict. A paused sandbox's processes keep their memory and sockets; the next wake,
// exec, terminal, task or keepalive unpauses it.
func (m *Manager) Pause(ctx context.Context, id string) error {
	return m.locked(ctx, id, func(ctx context.Context) error { return m.pauseLocked(ctx, id, "api") })
}

// Resume makes a paused or stopped sandbox run again: an unpause, or a start (bypassing
// the waker's admission, as Start does). resumed is false when it was running already.
func (m *Manager) Resume(ctx context.Context, id string) (resumed bool, err error) {
	sb, ok := m.cached(id)
	if !ok || !ValidID(id) {
		return false, errorf(CodeNotFound, "sandbox %q not found", id)
	}
	if sb.Status == store.StatusRunning {
		return false, nil
	}
	if _, err := m.Start(ctx, id); err != nil {
		return false, err
	}
	return true, nil
}

// Paused reports, from memory, whether a sandbox is paused.
func (m *Manager) Paused(id string) bool {
	sb, ok := m.cached(id)
	return ok && sb.Status == store.StatusPaused
}

// pauseLocked pauses id for a reason (api, idle) the observer counts. The caller holds
// id's lock.
func (m *Manager) pauseLocked(ctx context.Context, id, reason string) error {
	sb, ok := m.cached(id)
	if !ok {
		return errorf(CodeNotFound, "sandbox %s not found", id)
	}
	switch sb.Status {
	case store.StatusPaused:
		return nil
	case store.StatusRunning:
	default:
		return errorf(CodeConflict, "sandbox %s is %s; only a running sandbox can be paused", id, sb.Status)
	}
	// The row and the route say paused before the freeze: a request that arrives meanwhile
	// waits for this lock and then unpauses, instead of being proxied into processes
	// about to freeze.
	paused, err := m.setRuntime(ctx, sb, store.Runtime{Status: store.StatusPaused, ContainerID: sb.ContainerID, IP: sb.IP, PausedAt: m.now()})
	if err != nil {
		return err
	}
	if err := m.pauseContainer(ctx, sb.ContainerID); err != nil {
		// Say running again; should the container be gone, its die event reconciles it.
		if _, rerr := m.setRuntime(ctx, paused, store.Runtime{Status: store.StatusRunning, ContainerID: sb.ContainerID, IP: sb.IP}); rerr != nil {
			m.log.Error("record a failed pause", "sandbox", id, "err", rerr)
		}
		return err
	}
	if m.Observe.Paused != nil {
		m.Observe.Paused(reason)
	}
	return nil
}

// unpauseLocked thaws a paused sandbox and records it running. ok is false (with no error)
// when its container was not paused after all (unpaused, stopped or removed behind
// sandboxd's back) and does not run: the caller starts it cold. The caller holds the lock.
func (m *Manager) unpauseLocked(ctx context.Context, sb store.Sandbox) (ip netip.Addr, ok bool, err error) {
	began := time.Now()
	if uerr := m.unpauseContainer(ctx, sb.ContainerID); uerr != nil {
		st, err := m.inspectState(ctx, sb.ContainerID)
		switch {
		case errdefs.IsNotFound(err):
			m.log.Info("paused sandbox's container is gone; starting it", "sandbox", sb.ID)
			return netip.Addr{}, false, nil
		case err != nil:
			return netip.Addr{}, false, err
		case st.Paused:
			return netip.Addr{}, false, uerr // still frozen: the row stays paused
		case !st.Running:
			m.log.Info("paused sandbox's container is not running; starting it", "sandbox", sb.ID)
			return netip.Addr{}, false, nil
		}
		// Unpaused behind our back: it runs; record that.
	}
	if _, err := m.setRuntime(ctx, sb, store.Runtime{Status: store.StatusRunning, ContainerID: sb.ContainerID, IP: sb.IP}); err != nil {
		return netip.Addr{}, false, err
	}
	m.touch(sb.ID)
	if m.Observe.Timed != nil {
		m.Observe.Timed("unpause", time.Since(began))
	}
	return parseIP(sb.IP), true, nil
}
