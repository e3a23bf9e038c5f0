package lifecycle

import (
	"context"
	"net/netip"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"
)

// Networks are the address ranges of the sandbox networks, for the egress proxy: where it
// listens, and which addresses it never connects to.
type Networks struct {
	Bridge   netip.Prefix // Config.Network's range: the route out of sandboxes in mode open
	Internal netip.Prefix // Config.InternalNetwork's range; invalid when there is none
	Gateway  netip.Addr   // InternalNetwork's gateway: this host, as sandboxes reach it
}

// Networks makes the sandbox networks when absent and returns their ranges.
func (m *Manager) Networks(ctx context.Context) (Networks, error) {
	if err := m.ensureNetwork(ctx); err != nil {
		return Networks{}, err
	}
	return *m.nets.Load(), nil
}

// ensureNetwork creates the sandboxes' networks, with inter-container traffic off, when
// they are absent: Network, a bridge with a route out, and InternalNetwork (issue 15), a
// bridge Docker gives no route beyond its own range. Sandboxes reach neither each other
// nor, on the internal one, anything but this host.
func (m *Manager) ensureNetwork(ctx context.Context) error {
	if m.networkOK.Load() {
		return nil
	}
	var nets Networks
	var err error
	if nets.Bridge, _, err = m.ensureBridge(ctx, m.cfg.Network, false); err != nil {
		return err
	}
	if m.cfg.InternalNetwork != "" {
		if nets.Internal, nets.Gateway, err = m.ensureBridge(ctx, m.cfg.InternalNetwork, true); err != nil {
			return err
		}
	}
	m.nets.Store(&nets)
	m.networkOK.Store(true)
	return nil
}

// ensureBridge makes the bridge network name when absent and returns its IPv4 range and
// gateway.
func (m *Manager) ensureBridge(ctx context.Context, name string, isInternal bool) (netip.Prefix, netip.Addr, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	n, err := m.docker.NetworkInspect(cctx, name, network.InspectOptions{})
	if errdefs.IsNotFound(err) {
		_, err = m.docker.NetworkCreate(cctx, name, network.CreateOptions{
			Driver:   "bridge",
			Internal: isInternal,
			Options:  map[string]string{"com.docker.network.bridge.enable_icc": "false"},
			Labels:   map[string]string{LabelManaged: "true"},
		})
		if err != nil && !errdefs.IsConflict(err) {
			return netip.Prefix{}, netip.Addr{}, internal(err, "create network %s", name)
		}
		n, err = m.docker.NetworkInspect(cctx, name, network.InspectOptions{})
	}
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, internal(err, "inspect network %s", name)
	}
	if n.Options["com.docker.network.bridge.enable_icc"] != "false" {
		m.log.Warn("network lets sandboxes reach each other: recreate it with ICC off", "network", name)
	}
	if isInternal && !n.Internal {
		return netip.Prefix{}, netip.Addr{}, errorf(CodeInternal,
			"network %s exists but is not internal, so sandboxes on it would have a route out: remove it (docker network rm %s) and sandboxd makes it again", name, name)
	}
	for _, c := range n.IPAM.Config {
		pfx, perr := netip.ParsePrefix(c.Subnet)
		gw, gerr := netip.ParseAddr(c.Gateway)
		if perr == nil && pfx.Addr().Is4() {
			if gerr != nil {
				gw = pfx.Masked().Addr().Next() // Docker's default: the first address
			}
			return pfx.Masked(), gw, nil
		}
	}
	return netip.Prefix{}, netip.Addr{}, errorf(CodeInternal, "network %s has no IPv4 range", name)
}
