package lifecycle

import (
	"context"

	"github.com/docker/docker/errdefs"
	"github.com/sandboxd/sandboxd/store"
)

// frozen runs fn with sb's processes frozen when its container runs (issue 18: a
// snapshot's copy reads a tree nothing writes meanwhile), and thaws them after, whatever fn
// did. A container that is not running, or already paused, is left as it is.
//
// It calls the engine's pause and unpause itself, without changing the sandbox's state:
// the freeze lasts the copy, and a request arriving meanwhile is held by the kernel's
// accept queue and answered after. (Issue 14's Manager.Pause is a sleep tier, which the
// route table sees.)
func (m *Manager) frozen(ctx context.Context, sb store.Sandbox, fn func() error) error {
	if sb.Status != store.StatusRunning || sb.ContainerID == "" {
		return fn()
	}
	froze, err := m.freezeContainer(ctx, sb.ContainerID)
	if err != nil {
		return err
	}
	ferr := fn()
	if froze {
		if err := m.thawContainer(context.WithoutCancel(ctx), sb.ContainerID); err != nil {
			m.log.Error("thaw a sandbox after its snapshot", "sandbox", sb.ID, "err", err)
			if ferr == nil {
				ferr = err
			}
		}
	}
	return ferr
}

// freezeContainer pauses cid. froze is false when there was nothing to freeze: the
// container is gone, stopped, or paused already (by someone who will thaw it).
func (m *Manager) freezeContainer(ctx context.Context, cid string) (froze bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	err = m.docker.ContainerPause(cctx, cid)
	if err == nil {
		return true, nil
	}
	if errdefs.IsNotFound(err) || errdefs.IsConflict(err) {
		return false, nil // gone, not running, or paused: nothing runs to write
	}
	return false, internal(err, "freeze container %s for a snapshot", shortID(cid))
}

func (m *Manager) thawContainer(ctx context.Context, cid string) error {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	if err := m.docker.ContainerUnpause(cctx, cid); err != nil && !errdefs.IsNotFound(err) {
		return internal(err, "thaw container %s", shortID(cid))
	}
	return nil
}
