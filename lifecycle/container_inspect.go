package lifecycle

import (
	"context"
)

// containerIP reads the sandbox's address on its primary network: the internal one when
// there is one (issue 15), else the sandboxd network.
func (m *Manager) containerIP(ctx context.Context, cid string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerInspect(cctx, cid)
	if err != nil {
		return "", internal(err, "inspect container")
	}
	if info.NetworkSettings != nil {
		if ep, ok := info.NetworkSettings.Networks[m.primaryNetwork()]; ok && ep.IPAddress != "" {
			return ep.IPAddress, nil
		}
	}
	return "", errorf(CodeInternal, "container %s has no address on network %s", shortID(cid), m.primaryNetwork())
}
