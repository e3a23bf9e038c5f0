package lifecycle

import (
	"context"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"
)

// ensureNetwork creates the sandboxes' bridge network, with inter-container traffic off, when
// it is absent. Sandboxes reach the internet through it but not each other.
func (m *Manager) ensureNetwork(ctx context.Context) error {
	if m.networkOK.Load() {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	n, err := m.docker.NetworkInspect(cctx, m.cfg.Network, network.InspectOptions{})
	if err == nil {
		if n.Options["com.docker.network.bridge.enable_icc"] != "false" {
			m.log.Warn("network lets sandboxes reach each other: recreate it with ICC off",
				"network", m.cfg.Network)
		}
		m.networkOK.Store(true)
		return nil
	}
	if !errdefs.IsNotFound(err) {
		return internal(err, "inspect network %s", m.cfg.Network)
	}
	_, err = m.docker.NetworkCreate(cctx, m.cfg.Network, network.CreateOptions{
		Driver:  "bridge",
		Options: map[string]string{"com.docker.network.bridge.enable_icc": "false"},
		Labels:  map[string]string{LabelManaged: "true"},
	})
	if err != nil && !errdefs.IsConflict(err) {
		return internal(err, "create network %s", m.cfg.Network)
	}
	m.networkOK.Store(true)
	return nil
}
