package lifecycle

import (
	"context"

	"github.com/docker/docker/api/types/container"
)

// startContainer starts cid and returns its IP on the sandboxd network.
func (m *Manager) startContainer(ctx context.Context, cid string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	if err := m.docker.ContainerStart(cctx, cid, container.StartOptions{}); err != nil {
		return "", internal(err, "start container %s", shortID(cid))
	}
	return m.containerIP(ctx, cid)
}
