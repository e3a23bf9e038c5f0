package lifecycle

import (
	"context"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
)

// removeContainers force-removes every container of ours labelled with id.
func (m *Manager) removeContainers(ctx context.Context, id string) error {
	byID, err := m.listContainers(ctx, id)
	if err != nil {
		return err
	}
	for _, c := range byID[id] {
		if err := m.removeContainer(ctx, c.ID); err != nil {
			return err
		}
	}
	return nil
}

// removeContainer force-removes one container; one already gone is no error.
func (m *Manager) removeContainer(ctx context.Context, cid string) error {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	err := m.docker.ContainerRemove(cctx, cid, container.RemoveOptions{Force: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return internal(err, "remove container %s", shortID(cid))
	}
	return nil
}
