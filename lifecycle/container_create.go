package lifecycle

import (
	"context"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"
	"github.com/sandboxd/sandboxd/store"
)

// createContainer creates (does not start) the hardened container for sb, and the account
// files it mounts. img is its image (inspectImage); nil looks it up.
func (m *Manager) createContainer(ctx context.Context, sb store.Sandbox, img *imageFacts) (string, error) {
	if err := m.ensureNetwork(ctx); err != nil {
		return "", err
	}
	env, err := m.db.SandboxEnv(ctx, sb.ID)
	if err != nil {
		return "", internal(err, "read env of %s", sb.ID)
	}
	if img == nil {
		f, err := m.inspectImage(ctx, sb.Image)
		if err != nil {
			return "", err
		}
		img = &f
	}
	if sb.UID != 0 {
		if err := m.writeAccounts(sb, m.imageAccounts(ctx, *img)); err != nil {
			return "", err
		}
	}
	var imageCmd []string
	if m.cfg.InitPath != "" {
		imageCmd = img.cmd
	}
	cfg, host := m.containerSpec(sb, env, imageCmd)
	netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{m.primaryNetwork(): {}}}
	name := m.containerName(sb.ID)
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	resp, err := m.docker.ContainerCreate(cctx, cfg, host, netcfg, nil, name)
	if errdefs.IsConflict(err) {
		// A container of ours with this name survived a crash between create and record.
		// The row is the truth, so replace it.
		m.log.Warn("replacing leftover container", "sandbox", sb.ID, "name", name)
		if rerr := m.docker.ContainerRemove(cctx, name, container.RemoveOptions{Force: true}); rerr != nil {
			return "", internal(rerr, "remove leftover container %s", name)
		}
		resp, err = m.docker.ContainerCreate(cctx, cfg, host, netcfg, nil, name)
	}
	if err != nil {
		return "", internal(err, "create container for %s", sb.ID)
	}
	// Docker creates a container on one network; the others (the route out of a sandbox
	// in mode open) are connected before it starts.
	if err := m.alignNetworks(ctx, resp.ID, sb, map[string]bool{m.primaryNetwork(): true}); err != nil {
		if rerr := m.removeContainer(ctx, resp.ID); rerr != nil {
			m.log.Warn("remove container whose networks failed", "sandbox", sb.ID, "err", rerr)
		}
		return "", err
	}
	return resp.ID, nil
}
