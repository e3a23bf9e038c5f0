package lifecycle

import (
	"context"

	"github.com/docker/docker/errdefs"
	"github.com/sandboxd/sandboxd/store"
)

// frozen runs fn with sb's processes frozen when it runs (issue 18: a snapshot's copy
// reads a tree nothing writes meanwhile), and thaws them after, whatever fn did. The
// caller holds sb's lock. A paused sandbox (issue 14) is frozen already and stays so; a
// stopped one has nothing that writes.
//
// The freeze is the engine's pause (the cgroup freezer), the same verb as issue 14's
// pause tier, without its change of state: Manager.Pause is a sleep that the API, the
// route table and the metrics see, and a copy's instant must not look like one. A
// request arriving meanwhile waits in the kernel's accept queue and is answered after.
func (m *Manager) frozen(ctx context.Context, sb store.Sandbox, fn func() error) error {
	if sb.Status != store.StatusRunning || sb.ContainerID == "" {
		return fn()
	}
	if err := m.pauseContainer(ctx, sb.ContainerID); err != nil {
		if !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
			return err
		}
		// Gone, stopped, or paused behind sandboxd's back: nothing runs to write, and
		// whoever paused it thaws it.
		return fn()
	}
	ferr := fn()
	if err := m.unpauseContainer(context.WithoutCancel(ctx), sb.ContainerID); err != nil && !errdefs.IsNotFound(err) {
		m.log.Error("thaw a sandbox after its snapshot", "sandbox", sb.ID, "err", err)
		if ferr == nil {
			ferr = err
		}
	}
	return ferr
}
