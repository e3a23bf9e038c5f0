package lifecycle

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/errdefs"
	"github.com/sandboxd/sandboxd/lifecycle/agent"
)

// ImageInfo is an image sandboxes use and the agents it carries.
type ImageInfo struct {
	Image   string   `json:"image"`
	Present bool     `json:"present"`
	Default bool     `json:"default"`
	Agents  []string `json:"agents"`  // from its sandboxd.agents label
	Missing []string `json:"missing"` // agents sandboxd knows that the image lacks
	Known   bool     `json:"agents_known"`
}

// Images reports the default image and every image a sandbox uses.
func (m *Manager) Images(ctx context.Context) ([]ImageInfo, error) {
	names := map[string]bool{m.cfg.Image: true}
	m.mu.RLock()
	for _, l := range m.sandboxes {
		names[l.sb.Image] = true
	}
	m.mu.RUnlock()
	var out []ImageInfo
	for name := range names {
		info := ImageInfo{Image: name, Default: name == m.cfg.Image, Agents: []string{}, Missing: []string{}}
		cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
		img, err := m.docker.ImageInspect(cctx, name)
		cancel()
		switch {
		case errdefs.IsNotFound(err):
		case err != nil:
			return nil, internal(err, "inspect image %s", name)
		default:
			info.Present = true
			if agents, ok := imageAgents(img); ok {
				info.Known = true
				info.Agents = append(info.Agents, agents...)
			}
		}
		if info.Known {
			for _, a := range agent.Names() {
				if !slices.Contains(info.Agents, a) {
					info.Missing = append(info.Missing, a)
				}
			}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Image < out[j].Image })
	return out, nil
}

// imageAgents lists the agents an image's sandboxd.agents label names; ok is false when the
// image has no such label (its agents are unknown).
func imageAgents(img image.InspectResponse) (agents []string, ok bool) {
	if img.Config == nil {
		return nil, false
	}
	list, ok := img.Config.Labels[LabelAgents]
	if !ok {
		return nil, false
	}
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			agents = append(agents, a)
		}
	}
	return agents, true
}
