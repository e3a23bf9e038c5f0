package lifecycle

import "context"

// unpauseContainer thaws cid's processes where they were.
func (m *Manager) unpauseContainer(ctx context.Context, cid string) error {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	if err := m.docker.ContainerUnpause(cctx, cid); err != nil {
		return internal(err, "unpause container %s", shortID(cid))
	}
	m.thaws.note(cid, m.now())
	return nil
}
