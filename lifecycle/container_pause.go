package lifecycle

import "context"

// pauseContainer freezes every process of cid (the cgroup freezer): memory and sockets are
// kept, no CPU is used.
func (m *Manager) pauseContainer(ctx context.Context, cid string) error {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	if err := m.docker.ContainerPause(cctx, cid); err != nil {
		return internal(err, "pause container %s", shortID(cid))
	}
	return nil
}
