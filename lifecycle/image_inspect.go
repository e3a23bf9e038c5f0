package lifecycle

import (
	"context"

	"github.com/docker/docker/errdefs"
)

// imageFacts is what making a container needs to know of its image.
type imageFacts struct {
	ref string   // as the sandbox names it
	id  string   // the image's id: a rebuilt image under the same name has a new one
	cmd []string // Entrypoint+Cmd, which sandbox-init runs as service "main"; never nil
}

// inspectImage looks the image up.
func (m *Manager) inspectImage(ctx context.Context, image string) (imageFacts, error) {
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	img, err := m.docker.ImageInspect(cctx, image)
	if errdefs.IsNotFound(err) {
		return imageFacts{}, errorf(CodeInvalid, "image %q is not present on this host (build it, e.g. make image)", image)
	}
	if err != nil {
		return imageFacts{}, internal(err, "inspect image %s", image)
	}
	f := imageFacts{ref: image, id: img.ID, cmd: []string{}} // non-nil: looked up, even when the image has no command
	if img.Config != nil {
		f.cmd = append(append(f.cmd, img.Config.Entrypoint...), img.Config.Cmd...)
	}
	return f, nil
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
