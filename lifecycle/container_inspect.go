package lifecycle

import (
	"context"

	"github.com/docker/docker/errdefs"
)

// containerIP reads the sandbox's address on the sandboxd network.
func (m *Manager) containerIP(ctx context.Context, cid string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerInspect(cctx, cid)
	if err != nil {
		return "", internal(err, "inspect container")
	}
	if info.NetworkSettings != nil {
		if ep, ok := info.NetworkSettings.Networks[m.cfg.Network]; ok && ep.IPAddress != "" {
			return ep.IPAddress, nil
		}
	}
	return "", errorf(CodeInternal, "container %s has no address on network %s", shortID(cid), m.cfg.Network)
}

// containerState reads whether cid exists, runs and is paused (a paused container runs too).
func (m *Manager) containerState(ctx context.Context, cid string) (found, running, paused bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerInspect(cctx, cid)
	if errdefs.IsNotFound(err) {
		return false, false, false, nil
	}
	if err != nil {
		return false, false, false, internal(err, "inspect container")
	}
	if info.State == nil {
		return true, false, false, nil
	}
	return true, info.State.Running, info.State.Paused, nil
}
