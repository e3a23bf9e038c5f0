package lifecycle

import (
	"context"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/sandboxd/sandboxd/internal/netpolicy"
	"github.com/sandboxd/sandboxd/store"
)

// Issue 15: with an internal network, every container is on it, and its address there is
// the one the edge, the relay and the egress proxy know it by; a sandbox in mode open is
// on Network too, which gives it its route out. A mode change connects or disconnects
// Network and nothing else, so the sandbox's address, its previews and its open preview
// connections never change.

// egressOf is a sandbox's mode; a sandbox stored without one is open.
func egressOf(sb store.Sandbox) string {
	if sb.Egress == "" {
		return netpolicy.Open
	}
	return sb.Egress
}

// primaryNetwork is the network whose address routes use.
func (m *Manager) primaryNetwork() string {
	if m.cfg.InternalNetwork != "" {
		return m.cfg.InternalNetwork
	}
	return m.cfg.Network
}

// wantNetworks says, for each network of ours, whether sb's container belongs on it.
func (m *Manager) wantNetworks(sb store.Sandbox) map[string]bool {
	if m.cfg.InternalNetwork == "" {
		return map[string]bool{m.cfg.Network: true}
	}
	return map[string]bool{m.cfg.InternalNetwork: true, m.cfg.Network: egressOf(sb) == netpolicy.Open}
}

// aligned reports whether a container on the networks have is where sb wants it.
func (m *Manager) aligned(sb store.Sandbox, have map[string]bool) bool {
	for name, want := range m.wantNetworks(sb) {
		if have[name] != want {
			return false
		}
	}
	return true
}

// alignNetworks connects cid to the networks of ours it lacks, then disconnects it from
// those it must leave: a running sandbox keeps an address the edge reaches throughout.
// have is the networks it is on now. Networks that are not ours are left alone.
func (m *Manager) alignNetworks(ctx context.Context, cid string, sb store.Sandbox, have map[string]bool) error {
	want := m.wantNetworks(sb)
	for _, name := range []string{m.cfg.InternalNetwork, m.cfg.Network} {
		if name != "" && want[name] && !have[name] {
			if err := m.connectNetwork(ctx, name, cid); err != nil {
				return err
			}
		}
	}
	for name, w := range want {
		if !w && have[name] {
			if err := m.disconnectNetwork(ctx, name, cid); err != nil {
				return err
			}
		}
	}
	return nil
}

// alignContainer reads the networks cid is on and aligns them with sb's mode.
func (m *Manager) alignContainer(ctx context.Context, cid string, sb store.Sandbox) error {
	if m.cfg.InternalNetwork == "" {
		return nil
	}
	have, err := m.containerNetworks(ctx, cid)
	if err != nil {
		return err
	}
	if m.aligned(sb, have) {
		return nil
	}
	return m.alignNetworks(ctx, cid, sb, have)
}

func (m *Manager) connectNetwork(ctx context.Context, name, cid string) error {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	err := m.docker.NetworkConnect(cctx, name, cid, nil)
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return internal(err, "connect container %s to network %s", shortID(cid), name)
	}
	return nil
}

func (m *Manager) disconnectNetwork(ctx context.Context, name, cid string) error {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	err := m.docker.NetworkDisconnect(cctx, name, cid, false)
	if err != nil && !strings.Contains(err.Error(), "is not connected") {
		return internal(err, "disconnect container %s from network %s", shortID(cid), name)
	}
	return nil
}

// containerNetworks are the networks cid is on. A container that is gone is an error
// errdefs.IsNotFound recognizes.
func (m *Manager) containerNetworks(ctx context.Context, cid string) (map[string]bool, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	info, err := m.docker.ContainerInspect(cctx, cid)
	if err != nil {
		return nil, internal(err, "inspect container %s", shortID(cid))
	}
	if info.NetworkSettings == nil {
		return map[string]bool{}, nil
	}
	return summaryNetworks(info.NetworkSettings.Networks), nil
}

func summaryNetworks[E any](eps map[string]E) map[string]bool {
	have := make(map[string]bool, len(eps))
	for name := range eps {
		have[name] = true
	}
	return have
}

// listedNetworks are the networks of a container in a listing.
func listedNetworks(c *container.Summary) map[string]bool {
	if c.NetworkSettings == nil {
		return map[string]bool{}
	}
	return summaryNetworks(c.NetworkSettings.Networks)
}
