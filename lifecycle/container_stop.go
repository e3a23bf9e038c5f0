package lifecycle

import (
	"context"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
)

func (m *Manager) stopContainer(ctx context.Context, cid string) error {
	if cid == "" {
		return nil
	}
	grace := int(m.cfg.StopTimeout.Seconds())
	cctx, cancel := context.WithTimeout(ctx, m.cfg.StopTimeout+dockerTimeout)
	defer cancel()
	err := m.docker.ContainerStop(cctx, cid, container.StopOptions{Timeout: &grace})
	if err != nil && !errdefs.IsNotFound(err) {
		return internal(err, "stop container %s", shortID(cid))
	}
	return nil
}
