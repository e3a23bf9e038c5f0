package lifecycle

import (
	"context"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// listContainers lists this instance's containers (of one sandbox when id is set) by id.
func (m *Manager) listContainers(ctx context.Context, id string) (map[string][]container.Summary, error) {
	args := filters.NewArgs(filters.Arg("label", LabelInstance+"="+m.instance))
	if id != "" {
		args.Add("label", LabelID+"="+id)
	}
	cctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	list, err := m.docker.ContainerList(cctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, internal(err, "list containers")
	}
	byID := map[string][]container.Summary{}
	for _, c := range list {
		cid := c.Labels[LabelID]
		if c.Labels[labelProbe] != "" {
			continue // reading an image's accounts; removed by its maker
		}
		if !ValidID(cid) {
			m.log.Warn("container with a bad sandbox label; leaving it alone", "container", shortID(c.ID))
			continue
		}
		byID[cid] = append(byID[cid], c)
	}
	return byID, nil
}
