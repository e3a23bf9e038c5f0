package lifecycle

import (
	"context"

	"github.com/docker/docker/errdefs"
)

// imageCommand is the image's own Entrypoint+Cmd, which sandbox-init runs as service "main".
func (m *Manager) imageCommand(ctx context.Context, image string) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	img, err := m.docker.ImageInspect(cctx, image)
	if errdefs.IsNotFound(err) {
		return nil, errorf(CodeInvalid, "image %q is not present on this host (build it, e.g. make image)", image)
	}
	if err != nil {
		return nil, internal(err, "inspect image %s", image)
	}
	cmd := []string{} // non-nil: looked up, even when the image has no command
	if img.Config != nil {
		cmd = append(append(cmd, img.Config.Entrypoint...), img.Config.Cmd...)
	}
	return cmd, nil
}

// imageEnv is the environment the image itself sets, as KEY=VALUE entries. An image that
// is gone has none.
func (m *Manager) imageEnv(ctx context.Context, image string) map[string]bool {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	out := map[string]bool{}
	img, err := m.docker.ImageInspect(cctx, image)
	if err != nil || img.Config == nil {
		return out
	}
	for _, kv := range img.Config.Env {
		out[kv] = true
	}
	return out
}
